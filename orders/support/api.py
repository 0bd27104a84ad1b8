"""Tickets in the API (contract §8): open one, read them with their replies. The email or query
password is checked by the lookup itself (``orders.access.order_lookup``): a wrong one answers
404 like an unknown order and counts toward the lookup limit."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from ninja import Field, Router, Schema, Status

from core.client_ip import client_ip
from core.errors import ErrorOut, NotFound
from orders.access import order_lookup
from orders.models import Order
from orders.support.models import MESSAGE_MAX
from orders.support.tickets import ticket_open, tickets_for_order

router = Router(tags=["tickets"])


class TicketIn(Schema):
    email: str | None = Field(None, max_length=254)
    query_password: str | None = Field(None, max_length=128)
    kind: Literal["key_missing", "key_invalid", "other"]
    message: str = Field(..., min_length=1, max_length=MESSAGE_MAX)


class TicketCreatedOut(Schema):
    ticket_no: str
    status: str


class ReplyOut(Schema):
    from_: str = Field(..., alias="from")
    message: str
    created_at: datetime


class TicketOut(Schema):
    ticket_no: str
    kind: str
    status: str
    created_at: datetime
    replies: list[ReplyOut]


def _proven_order(request: HttpRequest, order_no: str, *, email: str, query_password: str) -> Order:
    order = order_lookup(
        order_no=order_no, email=email, query_password=query_password, ip=client_ip(request)
    )
    if order is None:
        raise NotFound("No order matches that number and email or password.")
    return order


@router.post(
    "/orders/{order_no}/tickets",
    response={201: TicketCreatedOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
)
def create_ticket(request: HttpRequest, order_no: str, payload: TicketIn):
    """Report a problem with an order: ``key_missing``, ``key_invalid`` or ``other``."""
    order = _proven_order(
        request,
        order_no,
        email=payload.email or "",
        query_password=payload.query_password or "",
    )
    ticket = ticket_open(
        order=order, kind=payload.kind, message=payload.message, client_ip=client_ip(request)
    )
    return Status(201, {"ticket_no": ticket.ticket_no, "status": ticket.status})


@router.get(
    "/orders/{order_no}/tickets",
    response={200: list[TicketOut], 404: ErrorOut, 429: ErrorOut},
    by_alias=True,
)
def list_tickets(
    request: HttpRequest,
    response: HttpResponse,
    order_no: str,
    email: str = "",
    query_password: str = "",
):
    """The order's tickets, newest first, each with its thread (``from``: buyer or shop)."""
    patch_cache_control(response, no_store=True, private=True)
    order = _proven_order(request, order_no, email=email, query_password=query_password)
    return tickets_for_order(order)
