"""The owner's tickets: a list (open first, by kind) and a ticket page with the order's whole
history (events, deliveries, messages and their attempts) and the three answers — reply,
replace a key, refund — plus the same replace and refund buttons on the order page.

Who may press what is decided on the server for every request (``orders.support.actions``):
owner and staff reply and replace (a replace never shows the key), finance and the owner
refund. Buyer emails are masked for anyone but the owner, as on the order page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from core.errors import InvalidInput
from core.masking import mask_email, shown_to
from core.roles import Role, has_role, is_owner
from orders.models import Delivery, MessageAttempt, Order, OrderEvent, OutboxMessage
from orders.support.actions import (
    may_refund,
    may_replace,
    order_key_replace,
    order_refund,
    replaceable_keys,
)
from orders.support.models import MESSAGE_MAX, KeyReplacement, Ticket, TicketStatus
from orders.support.tickets import ticket_close, ticket_reply

MASKED = {"buyer_email": "buyer_masked"}
STATUS_ORDER = Case(
    When(status=TicketStatus.OPEN, then=Value(0)),
    When(status=TicketStatus.ANSWERED, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


class ReplyForm(forms.Form):
    message = forms.CharField(
        max_length=MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 4, "cols": 70})
    )


def may_view_tickets(user: Any) -> bool:
    return (
        is_owner(user)
        or has_role(user, Role.STAFF)
        or has_role(user, Role.FINANCE)
        or user.has_perm("orders.view_ticket")
    )


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "ticket_no",
        "status",
        "kind",
        "order",
        "buyer_email",
        "created_at",
        "updated_at",
    ]
    list_filter = ["status", "kind", "created_at"]
    list_select_related = ["order"]
    search_fields = ["=ticket_no", "=order__order_no"]
    change_form_template = "admin/orders/ticket/change_form.html"
    fields = [
        "ticket_no",
        "status",
        "kind",
        "order_link",
        "buyer_email",
        "created_at",
        "updated_at",
    ]
    readonly_fields = [*fields, "buyer_masked"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return (
            super()
            .get_queryset(request)
            .annotate(status_rank=STATUS_ORDER)
            .order_by("status_rank", "kind", "-created_at")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # buyers open tickets, from the order page or the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # answered through the buttons, never by editing the row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_view_tickets(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_view_tickets(request.user)

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(self.list_display), MASKED)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return shown_to(request.user, list(self.fields), MASKED)

    @admin.display(description="buyer")
    def buyer_email(self, obj: Ticket) -> str:
        return obj.order.email

    @admin.display(description="buyer")
    def buyer_masked(self, obj: Ticket) -> str:
        return mask_email(obj.order.email)

    @admin.display(description="order")
    def order_link(self, obj: Ticket) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.order_no)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:ticket_id>/reply/", wrap(self.reply_view), name="orders_ticket_reply"),
            path("<int:ticket_id>/close/", wrap(self.close_view), name="orders_ticket_close"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        ticket = get_object_or_404(Ticket.objects.select_related("order"), pk=object_id)
        order = ticket.order
        context = {
            **(extra_context or {}),
            **order_history(order),
            "ticket": ticket,
            "replies": ticket.replies.select_related("actor"),
            "reply_form": ReplyForm(),
            **order_actions_context(request, order, ticket=ticket),
        }
        return super().change_view(request, object_id, form_url, context)

    def reply_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        if not may_replace(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form = ReplyForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Write a reply first (at most 2000 characters).")
        else:
            try:
                outcome = ticket_reply(
                    ticket_id=ticket_id, message=form.cleaned_data["message"], actor=request.user
                )
            except InvalidInput as exc:
                messages.error(request, exc.message)
            else:
                level = messages.SUCCESS if outcome.reply else messages.WARNING
                messages.add_message(request, level, outcome.message)
        return HttpResponseRedirect(reverse("admin:orders_ticket_change", args=[ticket_id]))

    def close_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        if not may_replace(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        ticket_close(ticket_id=ticket_id)
        messages.success(request, "Ticket closed.")
        return HttpResponseRedirect(reverse("admin:orders_ticket_changelist"))


def order_history(order: Order) -> dict[str, Any]:
    """Everything that happened to the order, for the ticket page (no key, ever)."""
    return {
        "order": order,
        "events": OrderEvent.objects.filter(order=order).select_related("actor"),
        "deliveries": Delivery.objects.filter(order=order),
        "outbox": OutboxMessage.objects.filter(order=order),
        "attempts": MessageAttempt.objects.filter(order=order),
        "replacements": KeyReplacement.objects.filter(order=order).select_related("actor"),
    }


def order_actions_context(
    request: HttpRequest, order: Order, *, ticket: Ticket | None = None
) -> dict[str, Any]:
    """What the order and ticket pages need for the replace and refund buttons."""
    return {
        "can_replace_key": may_replace(request.user),
        "can_refund": may_refund(request.user),
        "replaceable_keys": replaceable_keys(order),
        "action_ticket": ticket,
    }


def _back(request: HttpRequest, order_id: int) -> HttpResponseRedirect:
    ticket_id = request.POST.get("ticket")
    if ticket_id and ticket_id.isdigit():
        return HttpResponseRedirect(reverse("admin:orders_ticket_change", args=[int(ticket_id)]))
    return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order_id]))


def order_key_replace_view(request: HttpRequest, *, order_id: int) -> HttpResponse:
    """POST: replace one sold key of the order (named by its row id) from the pool."""
    if not may_replace(request.user):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    key_id = request.POST.get("key", "")
    ticket_id = request.POST.get("ticket", "")
    ticket = (
        Ticket.objects.filter(pk=int(ticket_id), order_id=order_id).first()
        if ticket_id.isdigit()
        else None
    )
    if not key_id.isdigit():
        messages.error(request, "Choose the key to replace.")
        return _back(request, order_id)
    outcome = order_key_replace(
        order_id=order_id,
        key_id=int(key_id),
        actor=request.user,
        ticket=ticket,
        reason=request.POST.get("reason", ""),
    )
    messages.add_message(
        request, messages.SUCCESS if outcome.done else messages.WARNING, outcome.message
    )
    return _back(request, order_id)


def order_refund_view(request: HttpRequest, *, order_id: int) -> HttpResponse:
    """POST: refund what is left of the order through its payment provider."""
    if not may_refund(request.user):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    order = get_object_or_404(Order, pk=order_id)
    outcome = order_refund(order=order, actor=request.user)
    messages.add_message(
        request, messages.SUCCESS if outcome.done else messages.WARNING, outcome.message
    )
    return _back(request, order_id)
