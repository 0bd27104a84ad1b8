"""Order pages (order page, live panel, lookup), the sandbox pay page and the Stripe webhook."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from cardpool.selectors import keys_for_order
from core.client_ip import client_ip
from core.errors import RateLimited
from core.money import format_money, to_decimal_string
from orders.access import grant_access, may_view, order_lookup
from orders.backorder_refunds import refund_due_at
from orders.followups.selectors import delivery_notice, mask_recipient
from orders.followups.services import order_viewed
from orders.models import Order, OrderStatus
from orders.outbox.selectors import inbox_for_order
from orders.payments.inbox import MAX_BODY_BYTES as MAX_WEBHOOK_BODY_BYTES
from orders.payments.inbox import InvalidWebhook, WebhookTooLarge, payment_event_receive
from orders.payments.stripe_events import (
    build_event,
    checkout_session_object,
    encode,
    sign_payload,
)
from orders.support.models import MESSAGE_MAX
from orders.support.tickets import tickets_for_order
from shop.models import ShopSettings

WAITING = frozenset({OrderStatus.PENDING, OrderStatus.PAID})


def _order_context(order: Order) -> dict:
    notice = delivery_notice(order) if order.delivered_at else None
    keys = keys_for_order(order) if order.delivered_at else []
    shop = ShopSettings.load()
    return {
        "keys_text": "\n".join(keys),
        "order": order,
        "notice": notice,
        "notice_to": mask_recipient(notice.channel, notice.recipient) if notice else "",
        "hold_expires_iso": order.hold_expires_at.isoformat(),
        "amount": to_decimal_string(order.amount, order.currency),
        "total": format_money(order.amount, order.currency),
        "keys": keys,
        "inbox": inbox_for_order(order) if order.delivered_at else [],
        "waiting": order.status in WAITING,
        "tickets": tickets_for_order(order),
        "ticket_message_max": MESSAGE_MAX,
        "sandbox": order.payment_provider == "sandbox" and settings.SANDBOX_PAYMENTS_ENABLED,
        "refund_hours": shop.backorder_refund_after_hours,
        "refund_due": refund_due_at(order, shop=shop),
    }


def _lookup_page(request: HttpRequest, *, order_no: str = "", error: str = "", status: int = 200):
    return render(
        request, "orders/lookup.html", {"order_no": order_no, "error": error}, status=status
    )


def order_page(request: HttpRequest, order_no: str) -> HttpResponse:
    order = Order.objects.select_related("product").filter(order_no=order_no).first()
    if order is None or not may_view(request, order):
        # Same page for "unknown" and "not yours": the number alone reveals nothing.
        return _lookup_page(request, order_no=order_no)
    order_viewed(order=order)
    response = render(request, "orders/order.html", _order_context(order))
    response["Cache-Control"] = "no-store"
    return response


def order_keys_txt(request: HttpRequest, order_no: str) -> HttpResponse:
    """The order's keys as a text file, one a line: the order page's access rule, and a
    404 (not the lookup page) for a stranger or an order without keys."""
    order = Order.objects.select_related("product").filter(order_no=order_no).first()
    keys = keys_for_order(order) if order is not None and order.delivered_at else []
    if order is None or not may_view(request, order) or not keys:
        raise Http404("No such order")
    order_viewed(order=order)
    response = HttpResponse("\n".join(keys) + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{order.order_no}-keys.txt"'
    response["Cache-Control"] = "no-store"
    return response


def order_panel(request: HttpRequest, order_no: str) -> HttpResponse:
    """The part of the order page that changes; the page polls it until delivery lands."""
    order = Order.objects.select_related("product").filter(order_no=order_no).first()
    if order is None or not may_view(request, order):
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    order_viewed(order=order)  # the keys landed on an open page: the buyer has seen them
    response = render(request, "orders/_panel.html", _order_context(order))
    response["X-Order-Status"] = order.status
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def lookup(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _lookup_page(request, order_no=request.GET.get("order_no", ""))
    order_no = request.POST.get("order_no", "").strip()
    secret = request.POST.get("email_or_password", "").strip()
    try:
        order = order_lookup(
            order_no=order_no,
            email=secret if "@" in secret else "",
            query_password=secret,
            ip=client_ip(request),
        )
    except RateLimited as exc:
        response = _lookup_page(request, order_no=order_no, error=exc.message, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if order is None:
        return _lookup_page(
            request,
            order_no=order_no,
            error=_("No order matches that number and email or password. Check both and retry."),
            status=404,
        )
    response = redirect("order-page", order_no=order.order_no)
    grant_access(request, response, order.order_no)
    return response


@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, order_no: str) -> HttpResponse:
    """The sandbox checkout: Pay signs a Stripe-format event and feeds the real webhook inbox."""
    if settings.PAYMENT_PROVIDER != "sandbox" or not settings.SANDBOX_PAYMENTS_ENABLED:
        raise Http404("The sandbox is off")
    order = Order.objects.select_related("product").filter(order_no=order_no).first()
    if order is None:
        raise Http404("No such order")
    # Like a real Checkout Session, which expires with the hold: an expired, cancelled or
    # lapsed order cannot be paid here any more (it used to hand out keys after expiry).
    payable = order.status == OrderStatus.PENDING and order.hold_expires_at > timezone.now()
    if request.method == "POST" and payable:
        event = build_event("checkout.session.completed", checkout_session_object(order))
        payload = encode(event)
        payment_event_receive(
            payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
        )
        # No access grant here: paying is not proof of being the buyer; the cookie set at
        # checkout (or a lookup) is.
        return redirect(reverse("order-page", args=[order.order_no]))
    if request.method == "POST":
        return redirect("order-page", order_no=order.order_no)
    return render(
        request,
        "orders/sandbox_pay.html",
        {
            "order": order,
            "amount": to_decimal_string(order.amount, order.currency),
            "total": format_money(order.amount, order.currency),
            "payable": payable,
        },
    )


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    # Refuse an oversized body from its declared length, before reading or verifying it.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # as Django reads it: an unparsable length reads no body
    try:
        if declared > MAX_WEBHOOK_BODY_BYTES:
            raise WebhookTooLarge(f"body over {MAX_WEBHOOK_BODY_BYTES} bytes")
        event, created = payment_event_receive(
            payload=request.body,
            signature=request.headers.get("Stripe-Signature"),
            client_ip=client_ip(request),
            headers=dict(request.headers),
        )
    except WebhookTooLarge as exc:
        return JsonResponse({"code": exc.code, "message": str(exc)}, status=413)
    except InvalidWebhook as exc:
        return JsonResponse({"code": exc.code, "message": str(exc)}, status=400)
    return JsonResponse({"received": True, "duplicate": not created})
