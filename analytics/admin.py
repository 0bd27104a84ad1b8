"""The weekly summaries in the admin: to whom, and what really happened to each email (read
from its outbox message), or why none was queued. Records: read-only."""

from __future__ import annotations

from django.contrib import admin

from analytics.models import WeeklySummary
from analytics.summary import summary_email_state
from core.admin import ReadOnlyAdmin


@admin.register(WeeklySummary)
class WeeklySummaryAdmin(ReadOnlyAdmin):
    list_display = ["week_start", "status", "email_state", "recipient", "subject"]
    list_filter = ["status"]
    readonly_fields = ["email_state"]

    @admin.display(description="Email")
    def email_state(self, obj: WeeklySummary) -> str:
        return summary_email_state(obj)
