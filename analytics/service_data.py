"""What is open right now, and the service figures whose source is still to come.

Seams (one function each, so the later source replaces one body and no caller):

- ``open_tickets`` and ``key_missing_reports``: the tickets of the issue "After the sale" (#12).
- ``delivery_failures``: failed deliveries by channel. Today the shop has two channels, the
  order page (keys shown once delivered) and the delivery email, and failures are read from
  what is recorded now: payment events that could not be processed, paid orders still without
  keys, and deliveries whose email never went out. The outbox of the issue "Every channel,
  pushed live" (#10) records every attempt per channel; this function then reads its failed
  messages grouped by channel instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum

from analytics.models import ShopHour
from orders.models import Order, OrderStatus, PaymentEvent
from orders.outbox.models import MessageChannel, MessageStatus, OutboxMessage
from orders.stock import with_stock
from orders.support.models import Ticket, TicketKind, TicketStatus
from riskrules.models import Alert
from shop.models import Product

#: A delivery whose email is not recorded as sent this long after is counted as failed.
EMAIL_GRACE = timedelta(minutes=10)


def open_alerts() -> Any:
    return Alert.objects.filter(acknowledged_at__isnull=True, resolved_at__isnull=True)


def open_tickets() -> int | None:
    return Ticket.objects.filter(status=TicketStatus.OPEN).count()


def key_missing_reports(start: datetime, end: datetime) -> int:
    """Tickets of kind "key missing" opened in the range."""
    return Ticket.objects.filter(
        kind=TicketKind.KEY_MISSING, created_at__gte=start, created_at__lt=end
    ).count()


def stock_counts(*, now: datetime | None = None) -> dict[str, int]:
    rows = with_stock(Product.objects.filter(on_sale=True), now=now).values(  # type: ignore[misc]
        "stock", "low_stock_threshold"
    )  # the stubs cannot see fields annotated by with_stock
    low = sold_out = 0
    for row in rows:  # one row per product on sale, not per order
        if row["stock"] == 0:
            sold_out += 1
        elif row["stock"] < row["low_stock_threshold"]:
            low += 1
    return {"low_stock": low, "sold_out": sold_out}


def open_now(*, now: datetime) -> dict[str, Any]:
    # One range of the (status, created_at) index: open statuses are few rows of millions.
    counts = Order.objects.filter(
        status__in=[OrderStatus.PENDING, OrderStatus.ON_HOLD, OrderStatus.BACKORDERED]
    ).aggregate(
        holds=Count("pk", filter=Q(status=OrderStatus.PENDING, hold_expires_at__gt=now)),
        on_hold=Count("pk", filter=Q(status=OrderStatus.ON_HOLD)),
        backorders=Count("pk", filter=Q(status=OrderStatus.BACKORDERED)),
    )
    return {
        **counts,
        **stock_counts(now=now),
        "tickets": open_tickets(),
        "alerts": open_alerts().count(),
    }


def delivery_failures(start: datetime, end: datetime, *, now: datetime) -> list[dict[str, Any]]:
    """Failed deliveries by channel for orders placed (or events received) in the range.
    Counts only: every source is an indexed range or a rollup."""
    inbox = PaymentEvent.objects.filter(
        received_at__gte=start, received_at__lt=end, processed_at__isnull=True
    ).exclude(last_error="")
    no_keys = Order.objects.filter(
        created_at__gte=start, created_at__lt=end, status=OrderStatus.BACKORDERED
    )
    # Orders placed in hours that ended at least EMAIL_GRACE ago (the rollup's hours).
    settled = (now - EMAIL_GRACE).replace(minute=0, second=0, microsecond=0)
    no_email = ShopHour.objects.filter(hour__gte=start, hour__lt=min(end, settled)).aggregate(
        n=Sum("unemailed")
    )["n"]
    given_up = (
        OutboxMessage.objects.filter(
            status=MessageStatus.FAILED, created_at__gte=start, created_at__lt=end
        )
        .values("channel")
        .annotate(n=Count("pk"))
        .order_by("channel")
    )
    labels = dict(MessageChannel.choices)
    outbox_rows = [
        {
            "channel": labels.get(row["channel"], row["channel"]),
            "failed": row["n"],
            "what": "Messages the outbox gave up on (every retry of this channel failed)",
        }
        for row in given_up
    ]
    return outbox_rows + [
        {
            "channel": "Order page (keys)",
            "failed": inbox.count(),
            "what": "Payment events that could not be processed",
        },
        {
            "channel": "Order page (keys)",
            "failed": no_keys.count(),
            "what": "Paid orders still waiting for keys (backordered)",
        },
        {
            "channel": "Email",
            "failed": int(no_email or 0),
            "what": "Delivered orders whose email is not recorded as sent "
            f"(placed over {EMAIL_GRACE.seconds // 60} min ago)",
        },
    ]
