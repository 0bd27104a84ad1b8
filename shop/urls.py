from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from orders import admin_live
from orders import views as order_views
from orders.followups import views as followup_views
from orders.support import views as support_views
from shop import views as shop_views
from shop.api import api

urlpatterns = [
    path("", shop_views.catalog, name="catalog"),
    path("p/<slug:slug>", shop_views.product_page, name="product-page"),
    path("o/<str:order_no>", order_views.order_page, name="order-page"),
    path("o/<str:order_no>/panel", order_views.order_panel, name="order-panel"),
    path("o/<str:order_no>/tickets", support_views.ticket_create, name="order-ticket-create"),
    path("o/<str:order_no>/keys.txt", order_views.order_keys_txt, name="order-keys-txt"),
    path("u/<str:token>", followup_views.unsubscribe, name="unsubscribe"),
    path("survey/<str:token>", followup_views.survey, name="survey"),
    path("lookup", order_views.lookup, name="order-lookup"),
    path("my-orders", support_views.my_orders, name="my-orders"),
    path("my-orders/<str:token>", support_views.my_orders_list, name="my-orders-list"),
    path("p/<slug:slug>/notify", support_views.restock_notify, name="restock-notify"),
    path("pay/sandbox/<str:order_no>", order_views.sandbox_pay, name="sandbox-pay"),
    path("payments/stripe/webhook", order_views.stripe_webhook, name="stripe-webhook"),
    path("api/v1/", api.urls),
    path("promoter/", include("commissions.urls")),
    path("admin/reports/", include("analytics.urls")),
    path("admin/live/", admin.site.admin_view(admin_live.live_feed), name="admin-live"),
    path("admin/", admin.site.urls),
    path("i18n/setlang/", set_language, name="set_language"),  # the language switch
    path("healthz", shop_views.healthz, name="healthz"),
]
