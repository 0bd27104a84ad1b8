"""The owner's live order feed in the admin (``/admin/live/``, contract §7).

The page lists the latest orders as they stand and then grows by itself: its script opens
``/ws/admin/orders`` (``orders.consumers.OrderFeedConsumer``), which pushes new orders,
deliveries, holds, backorders and failures as they commit. Mounted behind
``admin.site.admin_view`` (an active staff login), the same rule the socket applies.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core.money import to_decimal_string
from orders.live import masked_email
from orders.models import Order

RECENT_ORDERS = 30


def recent_orders(limit: int = RECENT_ORDERS) -> list[dict]:
    """The feed's first lines: the latest orders, shaped like the socket's messages."""
    orders = Order.objects.select_related("product").order_by("-created_at")[:limit]
    return [
        {
            "order_no": order.order_no,
            "product": order.product.name,
            "amount": to_decimal_string(order.amount, order.currency),
            "currency": order.currency,
            "status": order.status,
            "email": masked_email(order.email),
            "at": order.delivered_at or order.paid_at or order.created_at,
        }
        for order in orders
    ]


def live_feed(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Live orders",
        "subtitle": None,
        "orders": recent_orders(),
        "socket_path": "/ws/admin/orders",
    }
    return TemplateResponse(request, "admin/orders/live.html", context)
