"""Mounted at ``/admin/reports/`` by ``shop.urls``, before the admin's own catch-all."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from analytics.views import report_page

app_name = "analytics"

urlpatterns = [
    path("", admin.site.admin_view(report_page), name="overview"),
    path("<slug:slug>/", admin.site.admin_view(report_page), name="report"),
]
