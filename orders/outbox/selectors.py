"""Reads of the outbox for pages and the API: the buyer's inbox."""

from __future__ import annotations

from typing import Any

from orders.models import Order
from orders.outbox.models import InboxMessage


def inbox_for_order(order: Order) -> list[dict[str, Any]]:
    """The order's site-inbox messages, oldest first. Callers check access first."""
    entries = InboxMessage.objects.filter(order=order).order_by("created_at", "pk")
    return [
        {"subject": e.subject, "body": e.body, "created_at": e.created_at}
        for e in entries.only("subject", "body", "created_at")
    ]
