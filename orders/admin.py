"""The owner's view of orders and the payment-event inbox. Read-only on purpose.

An order's status may only change through ``orders.transitions.order_transition`` (allowed
transitions, conditional update, an event row with the actor); an admin form saving the row
directly would skip all three. So the order pages are for looking, the inbox has one action
(re-process, which goes through the same task as a webhook), and nothing here deletes:
orders, payment events and deliveries are the shop's books.

Delivered keys are decrypted on the order page only for superusers (the owner). Staff who
help with support see the order, its history and its payments, but the keys read "hidden".
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from cardpool.selectors import keys_for_order
from core.money import to_decimal_string
from orders.models import Delivery, Order, OrderEvent, PaymentEvent
from orders.payments.inbox import payment_event_reverify
from orders.tasks import process_payment_event

logger = logging.getLogger(__name__)

# Set by ``OrderAdmin.get_object`` on the instance it loads for one request: display methods
# only receive the object, and the instance (unlike the shared ModelAdmin) is per request.
KEYS_VISIBLE_ATTR = "_admin_keys_visible"


def _money(minor: int | None, currency: str) -> str:
    if minor is None:
        return "—"
    return f"{to_decimal_string(minor, currency)} {currency}"


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and never adds, changes or deletes them.

    It is visible to whoever may view the order: the history and payments are part of the
    order's record, and separate view permissions for them would only hide context.
    """

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


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["kind", "from_status", "to_status", "message", "actor", "created_at"]
    verbose_name_plural = "history"


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["key_count", "payment_event", "latency_ms", "emailed_at", "created_at"]


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = [
        "provider",
        "event_id",
        "type",
        "received_at",
        "processed_at",
        "attempts",
        "last_error",
    ]
    show_change_link = True


class AttentionFilter(admin.SimpleListFilter):
    """Orders the owner should look at: flagged by a risk rule, disputed, partly refunded."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("flagged", "Flagged by a risk rule"),
            ("disputed", "Disputed"),
            ("partly_refunded", "Partly refunded"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]):
        if self.value() == "flagged":
            return queryset.filter(risk_decisions__outcome="flag").distinct()
        if self.value() == "disputed":
            return queryset.filter(disputed_at__isnull=False)
        if self.value() == "partly_refunded":
            return queryset.filter(refunded_amount__gt=0).exclude(status="refunded")
        return queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "order_no",
        "product",
        "quantity",
        "amount_display",
        "status",
        "created_at",
        "paid_at",
        "delivered_at",
    ]
    list_filter = ["status", AttentionFilter, "product", "created_at"]
    list_select_related = ["product"]
    search_fields = ["order_no", "email"]
    search_help_text = "Order number or buyer email (or part of either)."
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [OrderEventInline, DeliveryInline, PaymentEventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_no",
                    "status",
                    "product",
                    "quantity",
                    "unit_price_display",
                    "amount_display",
                    "email",
                    "ref_code",
                ]
            },
        ),
        ("Keys", {"fields": ["delivered_keys"]}),
        (
            "Payment",
            {
                "fields": [
                    "payment_provider",
                    "checkout_session_id",
                    "payment_intent",
                    "paid_amount_display",
                    "refunded_amount_display",
                    "disputed_at",
                ]
            },
        ),
        (
            "Timeline",
            {
                "fields": [
                    "created_at",
                    "hold_expires_at",
                    "holds_keys",
                    "paid_at",
                    "backordered_at",
                    "delivered_at",
                ]
            },
        ),
        (
            "Buyer's client",
            {"fields": ["client_ip", "client_network", "user_agent"], "classes": ["collapse"]},
        ),
    ]
    readonly_fields = [
        "unit_price_display",
        "amount_display",
        "paid_amount_display",
        "refunded_amount_display",
        "delivered_keys",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from checkout, with holds, risk checks and a number

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False  # status moves only through order_transition; see the module docstring

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            setattr(obj, KEYS_VISIBLE_ATTR, request.user.is_superuser)
            if request.user.is_superuser:
                # Decrypting keys is worth an audit line even for the owner.
                logger.info("order %s keys shown in admin to %s", obj.order_no, request.user)
        return obj

    @admin.display(description="keys")
    def delivered_keys(self, obj: Order) -> str:
        if not getattr(obj, KEYS_VISIBLE_ATTR, False):
            return "hidden (only the shop owner sees keys)"
        keys = keys_for_order(obj)
        if not keys:
            return "none delivered"
        return format_html(
            '<ol class="kami-keys">{}</ol>',
            format_html_join("", "<li><code>{}</code></li>", ((key,) for key in keys)),
        )

    @admin.display(description="unit price", ordering="unit_price")
    def unit_price_display(self, obj: Order) -> str:
        return _money(obj.unit_price, obj.currency)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Order) -> str:
        return _money(obj.amount, obj.currency)

    @admin.display(description="paid amount")
    def paid_amount_display(self, obj: Order) -> str:
        return _money(obj.paid_amount, obj.paid_currency or obj.currency)

    @admin.display(description="refunded")
    def refunded_amount_display(self, obj: Order) -> str:
        return _money(obj.refunded_amount, obj.currency)


class ProcessedFilter(admin.SimpleListFilter):
    title = "processed"
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Unprocessed"), ("yes", "Processed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PaymentEvent]):
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        return queryset


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    """The webhook inbox. Events are stored before they are processed, so an unprocessed row
    with an error is the place to look when a paid order did not deliver."""

    list_display = [
        "event_id",
        "provider",
        "type",
        "order",
        "received_at",
        "processed_at",
        "attempts",
        "short_error",
    ]
    list_filter = [ProcessedFilter, "type", "provider"]
    list_select_related = ["order"]
    search_fields = ["=event_id", "=order__order_no"]
    search_help_text = "Exact event id or order number."
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["reprocess_selected"]
    fields = [
        "provider",
        "event_id",
        "type",
        "order",
        "received_at",
        "processed_at",
        "attempts",
        "last_error",
        "signature_now",
        "headers",
        "payload_pretty",
    ]
    readonly_fields = ["payload_pretty", "signature_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        # Without an object this gates the re-process action; rows themselves are read-only:
        # the payload is what the provider sent and must stay that way.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        return False

    @admin.display(description="last error")
    def short_error(self, obj: PaymentEvent) -> str:
        first_line = obj.last_error.strip().splitlines()[0] if obj.last_error.strip() else ""
        return first_line[:120]

    @admin.display(description="signature")
    def signature_now(self, obj: PaymentEvent) -> str:
        if not bytes(obj.body or b""):
            return "stored before raw bodies were kept: cannot be verified again"
        if payment_event_reverify(event=obj):
            return "valid: the stored body carries the webhook secret's signature"
        return "INVALID: the stored body does not match its signature"

    @admin.display(description="payload")
    def payload_pretty(self, obj: PaymentEvent) -> str:
        return format_html(
            '<pre style="white-space:pre-wrap">{}</pre>',
            json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False),
        )

    @admin.action(description="Re-verify and re-process selected", permissions=["change"])
    def reprocess_selected(self, request: HttpRequest, queryset: QuerySet[PaymentEvent]) -> None:
        """Verify each unprocessed event's stored body against its signature again, then queue
        it through the same task a webhook uses. One that no longer verifies (its row was
        altered) is not queued. Processed ones are left alone: processing is idempotent
        anyway, but re-queueing them would only add noise to the logs."""
        pending = list(queryset.filter(processed_at__isnull=True))
        queued, refused = [], []
        for event in pending:
            if bytes(event.body or b"") and not payment_event_reverify(event=event):
                refused.append(event.event_id)
                continue
            process_payment_event.delay(event.pk)
            queued.append(event.pk)
        skipped = queryset.count() - len(pending)
        message = f"Queued {len(queued)} event{'s' if len(queued) != 1 else ''} for processing."
        if skipped:
            message += f" {skipped} already processed, left alone."
        if refused:
            message += f" Not queued, signature no longer valid: {', '.join(refused)}."
        level = messages.SUCCESS if queued and not refused else messages.WARNING
        self.message_user(request, message, level)
