"""Promoter pages under /promoter/ (issue #3)."""

from django.urls import path  # noqa: F401

app_name = "commissions"
urlpatterns: list = []
