"""The owner's view of orders (and, in ``orders.admin_inbox``, the payment-event inbox).
Read-only on purpose.

An order's status may only change through ``orders.transitions.order_transition`` (allowed
transitions, conditional update, an event row with the actor); an admin form saving the row
directly would skip all three. So the order pages are for looking, the inbox has one action
(re-process, which goes through the same task as a webhook), and nothing here deletes:
orders, payment events and deliveries are the shop's books. The order page also lists its
outbox messages and every attempt to send them (``orders.outbox.admin``).

The order page never decrypts keys. The owner sees them only through "Reveal keys", which
asks a reason and records the reveal (``orders.admin_views``, ``orders.reveals``); support can
"Resend keys" to the buyer's own address without seeing them. Anyone but the owner sees buyer
emails masked and searches by exact order number only (``core.masking``): an order number with
its email is exactly what the public lookup asks before it returns the keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from cardpool.selectors import sold_key_count
from core.admin import ReadOnlyAdmin
from core.masking import mask_email, mask_emails_in, may_see_buyer_emails, shown_to
from core.money import to_decimal_string
from core.roles import is_owner
from orders import admin_inbox  # noqa: F401 - registers the payment-event inbox
from orders.admin_views import RESEND_PERMISSION, order_keys_resend_view, order_keys_reveal_view
from orders.followups import admin as followups_admin  # noqa: F401 - registers its pages
from orders.models import Delivery, KeyReveal, Order, OrderEvent, PaymentEvent
from orders.notices import admin as notices_admin  # noqa: F401 - registers its pages
from orders.outbox.admin import OrderMessageAttemptInline, OrderMessageInline
from orders.resend import order_keys_resend
from orders.support.admin import (
    order_actions_context,
    order_key_replace_view,
    order_refund_view,
)


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
    # Field → the display method shown instead to anyone but the owner (``core.masking``).
    masked: ClassVar[dict[str, str]] = {}

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

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return shown_to(request.user, list(self.fields or []), self.masked)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["kind", "from_status", "to_status", "message", "actor", "created_at"]
    masked = {"message": "message_masked"}
    verbose_name_plural = "history"

    @admin.display(description="message")
    def message_masked(self, obj: OrderEvent) -> str:
        return mask_emails_in(obj.message)


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
    masked = {"last_error": "last_error_masked"}
    show_change_link = True

    @admin.display(description="last error")
    def last_error_masked(self, obj: PaymentEvent) -> str:
        return mask_emails_in(obj.last_error)


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


# Order fields → what is shown instead to anyone but the owner.
MASKED = {"email": "email_masked", "delivered_keys": "keys_hidden"}


def _keys_delivered(count: int) -> str:
    return f"{count} key{'s' if count != 1 else ''} delivered"


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
    search_help_text = "Order number (the owner: also buyer email, or part of either)."
    actions = ["resend_keys"]
    change_form_template = "admin/orders/order/change_form.html"
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [
        OrderEventInline,
        DeliveryInline,
        PaymentEventInline,
        OrderMessageInline,
        OrderMessageAttemptInline,
    ]
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
        "keys_hidden",
        "email_masked",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders come from checkout, with holds, risk checks and a number

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False  # status moves only through order_transition; see the module docstring

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        if may_see_buyer_emails(request.user):
            return list(self.search_fields)
        return ["=order_no"]  # an email would find its order numbers: half of a lookup

    def get_fieldsets(self, request: HttpRequest, obj: Order | None = None):
        return [
            (name, {**options, "fields": shown_to(request.user, options["fields"], MASKED)})
            for name, options in super().get_fieldsets(request, obj)
        ]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:order_id>/reveal-keys/",
                wrap(self.reveal_keys_view),
                name="{}_{}_reveal_keys".format(*info),
            ),
            path(
                "<int:order_id>/resend-keys/",
                wrap(self.resend_keys_view),
                name="{}_{}_resend_keys".format(*info),
            ),
            path(
                "<int:order_id>/replace-key/",
                wrap(self.replace_key_view),
                name="{}_{}_replace_key".format(*info),
            ),
            path(
                "<int:order_id>/refund/",
                wrap(self.refund_view),
                name="{}_{}_refund".format(*info),
            ),
            *super().get_urls(),
        ]

    def replace_key_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        return order_key_replace_view(request, order_id=order_id)

    def refund_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        return order_refund_view(request, order_id=order_id)

    def reveal_keys_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        return order_keys_reveal_view(request, order_id=order_id, admin_site=self.admin_site)

    def resend_keys_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        return order_keys_resend_view(request, order_id=order_id)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        order = Order.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra_context = {
            **(extra_context or {}),
            **(order_actions_context(request, order) if order is not None else {}),
            "can_reveal_keys": is_owner(request.user),
            "can_resend_keys": self.has_resend_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Resend keys to the buyer's email", permissions=["resend"])
    def resend_keys(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """Queue the delivery email again for each selected delivered order. Whoever presses
        it sees a count, never a key: the email goes to the address on the order."""
        outcomes = [
            order_keys_resend(order_id=pk, actor=request.user)
            for pk in queryset.order_by("pk").values_list("pk", flat=True)
        ]
        queued = sum(o.queued for o in outcomes)
        text = f"Queued {queued} delivery email{'s' if queued != 1 else ''}."
        skipped = [o.message for o in outcomes if not o.queued]
        if skipped:
            text += " " + " ".join(skipped)
        self.message_user(request, text, messages.SUCCESS if not skipped else messages.WARNING)

    @admin.display(description="keys")
    def delivered_keys(self, obj: Order) -> str:
        """The owner's view: a count and the way to the recorded reveal, never a key."""
        count = sold_key_count(obj.pk)
        if not count:
            return "none delivered"
        url = reverse("admin:orders_order_reveal_keys", args=[obj.pk])
        return format_html(
            '{} — hidden. <a href="{}">Reveal them</a> (with a reason, recorded).',
            _keys_delivered(count),
            url,
        )

    @admin.display(description="keys")
    def keys_hidden(self, obj: Order) -> str:
        count = sold_key_count(obj.pk)
        if not count:
            return "none delivered"
        return f"{_keys_delivered(count)} — hidden (only the shop owner may reveal keys)."

    @admin.display(description="email")
    def email_masked(self, obj: Order) -> str:
        return mask_email(obj.email)

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


@admin.register(KeyReveal)
class KeyRevealAdmin(ReadOnlyAdmin):
    """Every time keys were shown in the admin: the owner's own record, read-only (and
    append-only in the database)."""

    list_display = ["created_at", "order", "actor_name", "reason", "client_ip", "key_count"]
    list_select_related = ["order"]
    list_filter = ["created_at"]
    search_fields = ["=order__order_no", "actor_name", "reason"]
    date_hierarchy = "created_at"
    fields = ["created_at", "order", "actor_name", "reason", "client_ip", "key_count"]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_owner(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_owner(request.user) and super().has_module_permission(request)
