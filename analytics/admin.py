"""The weekly summaries in the admin: what was sent, to whom, or why not. Records: read-only."""

from __future__ import annotations

from django.contrib import admin

from analytics.models import WeeklySummary
from core.admin import ReadOnlyAdmin


@admin.register(WeeklySummary)
class WeeklySummaryAdmin(ReadOnlyAdmin):
    list_display = ["week_start", "status", "recipient", "sent_at", "error"]
    list_filter = ["status"]
