"""The outbox in the admin: every message and every attempt, on the order and on its own.

Read-only like the rest of the order's record; the two actions go through the services
(``delivery_resend``, ``message_retry_now``). Resending needs the owner or the staff role
(``core.roles``: staff "may resend an order's keys to its buyer without reading them").
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin
from core.roles import Role, has_role, is_owner
from orders.models import Order
from orders.outbox.models import InboxMessage, MessageAttempt, OutboxMessage
from orders.outbox.services import delivery_resend, message_retry_now

MESSAGE_FIELDS = [
    "purpose",
    "channel",
    "generation",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
]
ATTEMPT_FIELDS = [
    "message",
    "number",
    "channel",
    "outcome",
    "started_at",
    "finished_at",
    "error",
    "provider_ref",
    "worker",
]


def may_resend(request: HttpRequest) -> bool:
    return is_owner(request.user) or has_role(request.user, Role.STAFF)


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orders.view_order") or request.user.has_perm(
            "orders.change_order"
        )


class OrderMessageInline(_ReadOnlyInline):
    model = OutboxMessage
    fields = MESSAGE_FIELDS
    show_change_link = True
    verbose_name_plural = "messages"


class OrderMessageAttemptInline(_ReadOnlyInline):
    """Every try to reach the buyer or the owner about this order, in order."""

    model = MessageAttempt
    fields = ATTEMPT_FIELDS
    verbose_name_plural = "message attempts"


class MessageAttemptInline(_ReadOnlyInline):
    model = MessageAttempt
    fields = ATTEMPT_FIELDS[1:]
    fk_name = "message"


@admin.action(description="Resend the keys' message to the buyer (new copy, same chain)")
def resend_delivery(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]):
    if not may_resend(request):
        modeladmin.message_user(request, "Only the owner or staff may resend.", messages.ERROR)
        return
    queued, skipped = 0, 0
    for order in queryset:
        with transaction.atomic():
            if delivery_resend(order=order):
                queued += 1
            else:
                skipped += 1
    text = f"Queued {queued} resend(s)."
    if skipped:
        text += f" {skipped} order(s) have no delivered keys, nothing sent."
    modeladmin.message_user(request, text, messages.SUCCESS if queued else messages.WARNING)


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Waiting or sending"), ("sent", "Sent"), ("failed", "Gave up")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]):
        if self.value() == "open":
            return queryset.filter(status__in=["pending", "sending"])
        if self.value() in ("sent", "failed"):
            return queryset.filter(status=self.value())
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["idempotency_key", "order", *MESSAGE_FIELDS[1:8]]
    list_filter = [StatusFilter, "channel", "purpose"]
    list_select_related = ["order"]
    search_fields = ["=order__order_no", "=idempotency_key"]
    search_help_text = "Exact order number or idempotency key."
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["idempotency_key", "order", *MESSAGE_FIELDS, "fallback", "provider_ref", "created_at"]
    readonly_fields = fields
    inlines = [MessageAttemptInline]
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Without an object this gates the action; the rows themselves stay as recorded.
        return obj is None and may_resend(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orders.view_order") or super().has_view_permission(
            request, obj
        )

    @admin.action(description="Try again now (one more attempt each)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        with transaction.atomic():
            count = message_retry_now(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} message(s) due now; sent ones were left alone.")


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["subject", "order", "created_at"]
    list_select_related = ["order"]
    search_fields = ["=order__order_no"]
