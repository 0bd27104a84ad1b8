"""Promoter pages under /promoter/."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from commissions import views

app_name = "commissions"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("join", views.join, name="join"),
    path("login", views.PromoterLoginView.as_view(), name="login"),
    path("logout", LogoutView.as_view(next_page="/"), name="logout"),
    path("withdraw", views.withdraw, name="withdraw"),
    path("withdrawals/<int:withdrawal_id>", views.withdrawal_detail, name="withdrawal"),
]
