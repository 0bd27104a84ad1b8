"""The owner's risk control: rules, blocklist, decisions, the review queue and alerts.

Rules and blocklist entries are edited here directly (they are configuration, validated by
the model's ``clean``); everything that touches an order goes through a service, so the review
queue's approve / reject-and-refund / blocklist actions take the same paths, locks and audit
records as the rest of the shop. Decisions, review actions and alerts are records: read-only.
Anyone but the owner sees buyer emails masked here too (``core.masking``): finance works the
review queue, and an order number beside its email would open the public lookup.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.masking import (
    buyer_email_for,
    buyer_text_for,
    mask_email,
    mask_emails_in,
    may_see_buyer_emails,
    shown_to,
)
from core.money import to_decimal_string
from orders.models import OrderEvent, OrderStatus
from riskrules.alerts import alert_acknowledge, alert_email_state
from riskrules.models import (
    Alert,
    BlocklistEntry,
    ReviewAction,
    ReviewOrder,
    RiskDecision,
    RiskRule,
    RiskSettings,
)
from riskrules.review import review_approve, review_reject_refund
from riskrules.selectors import review_queue
from riskrules.services import review_blocklist_buyer


def _order_link(order) -> str:
    if order is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:orders_order_change", args=[order.pk]),
        order.order_no,
    )


@admin.register(RiskRule)
class RiskRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "summary", "action", "enabled", "position", "updated_at"]
    list_display_links = ["name"]
    list_editable = ["action", "enabled", "position"]
    list_filter = ["kind", "action", "enabled"]
    search_fields = ["name", "note"]
    ordering = ["position", "pk"]
    actions = ["enable_rules", "disable_rules"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "kind",
                    "action",
                    "enabled",
                    "position",
                    "product",
                    "buyer_message",
                    "note",
                ]
            },
        ),
        (
            "Velocity and quantity cap",
            {
                "fields": ["key", "measure", "limit", "window_minutes"],
                "description": "Velocity: more than <em>limit</em> orders (or keys) within the "
                "window, per key, fires. Quantity cap: more than <em>limit</em> keys in one "
                "order fires.",
            },
        ),
        (
            "Amount anomaly",
            {
                "fields": ["multiplier", "baseline_days", "min_baseline_orders", "floor_amount"],
                "description": "Fires when an order's amount is over K × the product's average "
                "paid order of the last days, once enough orders make an average.",
            },
        ),
    ]

    @admin.display(description="what it checks")
    def summary(self, obj: RiskRule) -> str:
        scope = f" ({obj.product})" if obj.product_id else ""
        if obj.kind == RiskRule.Kind.VELOCITY:
            noun = "keys" if obj.measure == RiskRule.Measure.UNITS else "orders"
            return (
                f"> {obj.limit} {noun} / {obj.window_minutes} min per "
                f"{obj.get_key_display()}{scope}"
            )
        if obj.kind == RiskRule.Kind.AMOUNT_ANOMALY:
            return (
                f"> {obj.multiplier} × {obj.baseline_days}-day average "
                f"(after {obj.min_baseline_orders} orders){scope}"
            )
        if obj.kind == RiskRule.Kind.QUANTITY_CAP:
            return f"> {obj.limit} keys per order{scope}"
        return obj.get_kind_display() + scope

    @staticmethod
    def _switch(queryset: QuerySet[RiskRule], enabled: bool) -> int:
        """Row by row, not ``update()``: each switch is a rule change for the audit log."""
        rules = list(queryset.exclude(enabled=enabled))
        for r in rules:
            r.enabled = enabled
            r.save(update_fields=["enabled", "updated_at"])
        return len(rules)

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self.message_user(request, f"Enabled {self._switch(queryset, True)} rule(s).")

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self.message_user(request, f"Disabled {self._switch(queryset, False)} rule(s).")


@admin.register(BlocklistEntry)
class BlocklistEntryAdmin(admin.ModelAdmin):
    list_display = ["value", "kind", "note", "expires_at", "live", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value", "note"]
    fields = ["kind", "value", "note", "expires_at"]
    masked = {"value": "value_masked"}

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(super().get_list_display(request)), self.masked)

    def get_list_display_links(self, request: HttpRequest, list_display):
        # An entry's own pages are titled with it, email and all: the owner's alone.
        return (
            super().get_list_display_links(request, list_display) if self._owner(request) else None
        )

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return list(self.search_fields) if self._owner(request) else ["note"]

    def has_view_permission(self, request: HttpRequest, obj: BlocklistEntry | None = None):
        if obj is not None and not self._owner(request):
            return False
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: BlocklistEntry | None = None):
        if obj is not None and not self._owner(request):
            return False
        return super().has_change_permission(request, obj)

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        if not self._owner(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    @staticmethod
    def _owner(request: HttpRequest) -> bool:
        return may_see_buyer_emails(request.user)

    @admin.display(description="value")
    def value_masked(self, obj: BlocklistEntry) -> str:
        return mask_email(obj.value) if obj.kind == BlocklistEntry.Kind.EMAIL else obj.value

    @admin.display(boolean=True)
    def live(self, obj: BlocklistEntry) -> bool:
        return obj.expires_at is None or obj.expires_at > timezone.now()

    def save_model(self, request: HttpRequest, obj: BlocklistEntry, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(RiskDecision)
class RiskDecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "outcome", "rule_name", "order_link", "email", "client_ip"]
    list_filter = ["outcome", "rule_kind", "created_at"]
    list_select_related = ["order"]
    search_fields = ["=email", "=client_ip", "=order__order_no", "rule_name"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "created_at",
        "outcome",
        "rule",
        "rule_name",
        "rule_kind",
        "order_link",
        "product",
        "email",
        "client_ip",
        "message",
        "inputs",
    ]
    readonly_fields = [
        "created_at",
        "order_link",
        "email_masked",
        "message_masked",
        "inputs_masked",
    ]
    masked = {"email": "email_masked", "message": "message_masked", "inputs": "inputs_masked"}

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(super().get_list_display(request)), self.masked)

    def get_fields(self, request: HttpRequest, obj: RiskDecision | None = None) -> list[str]:
        return shown_to(request.user, list(self.fields), self.masked)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        if may_see_buyer_emails(request.user):
            return list(self.search_fields)
        return ["=client_ip", "=order__order_no", "rule_name"]

    @admin.display(description="order")
    def order_link(self, obj: RiskDecision) -> str:
        return _order_link(obj.order)

    @admin.display(description="email")
    def email_masked(self, obj: RiskDecision) -> str:
        return mask_email(obj.email)

    @admin.display(description="message")
    def message_masked(self, obj: RiskDecision) -> str:
        return mask_emails_in(obj.message)

    @admin.display(description="inputs")
    def inputs_masked(self, obj: RiskDecision) -> str:
        return mask_emails_in(json.dumps(obj.inputs, sort_keys=True, ensure_ascii=False))


@admin.register(ReviewOrder)
class ReviewOrderAdmin(ReadOnlyAdmin):
    """Paid orders on hold, newest first, with why they wait and what the owner can do."""

    list_display = [
        "order_no",
        "product",
        "quantity",
        "amount_display",
        "email",
        "client_ip",
        "reasons",
        "paid_at",
        "created_at",
    ]
    list_select_related = ["product"]
    list_filter = ["product"]
    list_display_links = None  # the order number links to the order page itself
    search_fields = ["=order_no", "email"]
    ordering = ["-created_at", "-pk"]
    actions = ["approve", "reject_and_refund", "blocklist_email", "blocklist_ip"]
    masked = {"email": "email_masked"}

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(super().get_list_display(request)), self.masked)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return list(self.search_fields) if may_see_buyer_emails(request.user) else ["=order_no"]

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        """A queued order is an order: its page is the order page (with its masking)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[object_id]))

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        return self.change_view(request, object_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewOrder]:
        holds = OrderEvent.objects.filter(to_status=OrderStatus.ON_HOLD).order_by("pk")
        return review_queue(super().get_queryset(request)).prefetch_related(
            Prefetch("events", queryset=holds, to_attr="hold_events")
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_review_permission(request) or super().has_view_permission(request, obj)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("riskrules.review_order")

    @admin.display(description="order", ordering="order_no")
    def order_no(self, obj: ReviewOrder) -> str:
        return _order_link(obj)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: ReviewOrder) -> str:
        return f"{to_decimal_string(obj.amount, obj.currency)} {obj.currency}"

    @admin.display(description="email")
    def email_masked(self, obj: ReviewOrder) -> str:
        return mask_email(obj.email)

    @admin.display(description="why it waits")
    def reasons(self, obj: ReviewOrder) -> str:
        events = getattr(obj, "hold_events", [])
        return (
            format_html_join("", "<div>{}</div>", ((e.message or e.kind,) for e in events)) or "—"
        )

    def _run(self, request: HttpRequest, queryset: QuerySet, service, label: str, **kw) -> None:
        results = []
        for order in queryset.order_by("pk"):
            outcome = service(order_id=order.pk, actor=request.user, **kw)
            results.append(f"{order.order_no}: {outcome}")
        text = f"{label} — " + "; ".join(results) if results else "Nothing selected."
        self.message_user(request, buyer_text_for(request.user, text))

    @admin.action(description="Approve: deliver selected orders", permissions=["review"])
    def approve(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> None:
        self._run(request, queryset, review_approve, "Approved")

    @admin.action(description="Reject and refund selected orders", permissions=["review"])
    def reject_and_refund(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]):
        """Refunds are irreversible: ask once, listing the orders, before asking the provider."""
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/riskrules/revieworder/confirm_reject.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Reject and refund these orders?",
                    "orders": [
                        (order, buyer_email_for(request.user, order.email))
                        for order in queryset.select_related("product")
                    ],
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )
        self._run(request, queryset, review_reject_refund, "Reject and refund")
        return None

    @admin.action(description="Add buyer's email to the blocklist", permissions=["review"])
    def blocklist_email(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> None:
        self._run(
            request,
            queryset,
            review_blocklist_buyer,
            "Blocklisted",
            kind=BlocklistEntry.Kind.EMAIL,
        )

    @admin.action(description="Add buyer's IP to the blocklist", permissions=["review"])
    def blocklist_ip(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> None:
        self._run(
            request,
            queryset,
            review_blocklist_buyer,
            "Blocklisted",
            kind=BlocklistEntry.Kind.NETWORK,
        )


@admin.register(ReviewAction)
class ReviewActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "order_link", "actor", "result"]
    list_filter = ["action", "created_at"]
    list_select_related = ["order", "actor"]
    search_fields = ["=order__order_no"]
    masked = {"result": "result_masked"}

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(super().get_list_display(request)), self.masked)

    def get_fields(self, request: HttpRequest, obj: ReviewAction | None = None) -> list[str]:
        names = [f.name for f in ReviewAction._meta.fields if f.name != "id"]
        return shown_to(request.user, names, self.masked)

    def get_readonly_fields(self, request: HttpRequest, obj: ReviewAction | None = None):
        return self.get_fields(request, obj)

    @admin.display(description="result")
    def result_masked(self, obj: ReviewAction) -> str:
        return mask_emails_in(obj.result)

    @admin.display(description="order")
    def order_link(self, obj: ReviewAction) -> str:
        return _order_link(obj.order)


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("acknowledged", "Acknowledged"), ("resolved", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Alert]):
        if self.value() == "open":
            return queryset.filter(acknowledged_at__isnull=True, resolved_at__isnull=True)
        if self.value() == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "kind",
        "count",
        "first_seen_at",
        "last_seen_at",
        "email_state",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = [OpenFilter, "kind", "email_status"]
    actions = ["acknowledge"]
    fields = [*list_display, "email_queued_at", "email_message_key", "subject", "detail"]
    readonly_fields = ["email_state"]

    @admin.display(description="email")
    def email_state(self, obj: Alert) -> str:
        """What really happened to the alert's email (its outbox row), never a send that did
        not happen."""
        return alert_email_state(obj)

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("riskrules.change_alert")

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        n = alert_acknowledge(
            alert_ids=list(queryset.values_list("pk", flat=True)), user=request.user
        )
        self.message_user(request, f"Acknowledged {n} alert(s).", messages.SUCCESS)


@admin.register(RiskSettings)
class RiskSettingsAdmin(SingletonAdmin):
    pass
