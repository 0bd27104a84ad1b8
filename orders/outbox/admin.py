"""The outbox in the admin: every message and every attempt, on the order and on its own.

Read-only like the rest of the order's record; the two actions go through the services
(``delivery_resend``, ``message_retry_now``). Resending needs the owner or the staff role
(``core.roles``: staff "may resend an order's keys to its buyer without reading them").
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin
from core.masking import mask_emails_in, mask_recipient, shown_to
from core.roles import Role, has_role, is_owner
from orders.outbox.models import InboxMessage, MessageAttempt, OutboxMessage
from orders.outbox.services import message_retry_now

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


# Anyone but the owner sees a buyer's address masked (``core.masking``): with the order number
# beside it, it is what the public lookup asks before it shows the keys.
MASKED = {
    "recipient": "recipient_masked",
    "last_error": "last_error_masked",
    "error": "error_masked",
}


class _BuyerMasking:
    @admin.display(description="recipient")
    def recipient_masked(self, obj: Any) -> str:
        return mask_recipient(obj.recipient)

    @admin.display(description="last error")
    def last_error_masked(self, obj: Any) -> str:
        return mask_emails_in(obj.last_error)

    @admin.display(description="error")
    def error_masked(self, obj: Any) -> str:
        return mask_emails_in(obj.error)


class _ReadOnlyInline(_BuyerMasking, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return shown_to(request.user, list(self.fields or []), MASKED)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

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


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("open", "Waiting or sending"),
            ("sent", "Sent"),
            ("failed", "Gave up"),
            ("skipped", "Not sent: no longer wanted"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]):
        if self.value() == "open":
            return queryset.filter(status__in=["pending", "sending"])
        if self.value() in ("sent", "failed", "skipped"):
            return queryset.filter(status=self.value())
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_BuyerMasking, admin.ModelAdmin):
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

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(self.list_display), MASKED)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return shown_to(request.user, list(self.fields), MASKED)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

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
