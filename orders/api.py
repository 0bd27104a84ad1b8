"""Orders API: checkout and lookup. Thin: validate the shape, call a service, shape the answer."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from ninja import Field, Router, Schema, Status
from pydantic import StrictInt

from cardpool.selectors import keys_for_order
from core.client_ip import client_ip
from core.errors import ErrorOut, NotFound
from core.money import to_decimal_string
from orders.access import order_lookup
from orders.models import Order
from orders.outbox.selectors import inbox_for_order
from orders.payments.providers import checkout_start
from orders.services import CheckoutRequest, order_create

router = Router(tags=["orders"])


class OrderIn(Schema):
    product: str = Field(..., max_length=80)
    # A JSON integer only: lax parsing read "1_0" as 10 and true as 1.
    quantity: StrictInt
    email: str = Field(..., max_length=254)
    query_password: str | None = Field(None, max_length=128)
    phone: str | None = Field(None, max_length=32, description="E.164, for an SMS copy.")
    ref: str | None = Field(None, max_length=32)
    variant: str | None = Field(None, max_length=80)
    coupon: str | None = Field(None, max_length=80)


class OrderCreatedOut(Schema):
    order_no: str
    status: str
    amount: str
    currency: str
    pay_url: str
    held_until: datetime | None = Field(
        None,
        description=(
            "Until when the order's keys are held for it. null: unpaid orders already hold "
            "the product's share of keys, so none are held for this one and whoever pays "
            "first gets them (a payer who finds none is backordered, then refunded "
            "automatically if no restock comes in time)."
        ),
    )


class InboxMessageOut(Schema):
    subject: str
    body: str
    created_at: datetime


class OrderOut(Schema):
    order_no: str
    status: str
    product: str
    quantity: int
    amount: str
    currency: str
    keys: list[str]
    created_at: datetime
    paid_at: datetime | None
    delivered_at: datetime | None
    inbox: list[InboxMessageOut] = Field(
        default_factory=list, description="The buyer's site inbox: messages about this order."
    )


def order_out(order: Order) -> dict:
    return {
        "order_no": order.order_no,
        "status": order.status,
        "product": order.product.slug,
        "quantity": order.quantity,
        "amount": to_decimal_string(order.amount, order.currency),
        "currency": order.currency,
        "keys": keys_for_order(order) if order.delivered_at else [],
        "created_at": order.created_at,
        "paid_at": order.paid_at,
        "delivered_at": order.delivered_at,
        "inbox": inbox_for_order(order),
    }


@router.post(
    "/orders",
    response={
        201: OrderCreatedOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
        502: ErrorOut,
        503: ErrorOut,
    },
)
def create_order(request: HttpRequest, payload: OrderIn):
    """Create a pending order for ``quantity`` keys; pay at ``pay_url``. Its keys are held
    until ``held_until`` when the product's hold share allows, else whoever pays first wins."""
    order = order_create(
        req=CheckoutRequest(
            product=payload.product,
            quantity=payload.quantity,
            email=payload.email,
            query_password=payload.query_password or "",
            phone=payload.phone or "",
            ref=payload.ref or "",
            variant=payload.variant or "",
            coupon=payload.coupon or "",
            client_ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            language=get_language(),
        )
    )
    pay_url = checkout_start(order=order, base_url=request.build_absolute_uri("/"))
    return Status(
        201,
        {
            "order_no": order.order_no,
            "status": order.status,
            "amount": to_decimal_string(order.amount, order.currency),
            "currency": order.currency,
            "pay_url": pay_url,
            "held_until": order.hold_expires_at if order.holds_keys else None,
        },
    )


class LookupIn(Schema):
    """Either credential proves the order; sent in the body, it stays out of URLs and logs."""

    email: str | None = Field(None, max_length=254)
    query_password: str | None = Field(None, max_length=128)


def lookup_order(
    request: HttpRequest,
    response: HttpResponse,
    order_no: str,
    *,
    email: str,
    query_password: str,
) -> dict:
    """The one lookup behind both forms: rate limited, and a wrong credential is a 404. The
    answer can carry card keys, so no cache (browser, proxy) may keep it."""
    patch_cache_control(response, no_store=True, private=True)
    order = order_lookup(
        order_no=order_no, email=email, query_password=query_password, ip=client_ip(request)
    )
    if order is None:
        raise NotFound("No order matches that number and email or password.")
    return order_out(order)


@router.get("/orders/{order_no}", response={200: OrderOut, 404: ErrorOut, 429: ErrorOut})
def get_order(
    request: HttpRequest,
    response: HttpResponse,
    order_no: str,
    email: str = "",
    query_password: str = "",
):
    """An order with its keys, for whoever knows its email or query password.

    The same lookup as ``POST /orders/{order_no}/lookup``, which keeps the credential out of
    the URL; servers redact both parameters from their access logs (``shop.access_log``).
    """
    return lookup_order(request, response, order_no, email=email, query_password=query_password)


@router.post(
    "/orders/{order_no}/lookup",
    response={200: OrderOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
)
def lookup_order_post(
    request: HttpRequest, response: HttpResponse, order_no: str, payload: LookupIn
):
    """``GET /orders/{order_no}`` with the email or query password in the body: same answers."""
    return lookup_order(
        request,
        response,
        order_no,
        email=payload.email or "",
        query_password=payload.query_password or "",
    )
