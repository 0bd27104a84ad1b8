"""The priority lane: high-value orders and returning buyers are delivered first.

An order is a priority order when its amount reaches the owner's ``ShopSettings.priority_amount``
(minor units of the order's currency; 0 turns it off) or its buyer (``buyer_identity``, the
folded email) already has a delivered order. That is decided once, at checkout, and kept on
the order (``Order.priority``), where the owner sees it.

Its payment event is then processed on its own queue, ``<KAMI_TASK_QUEUE>-priority``, which a
worker of its own consumes (``docker-compose.yml``'s ``priority-worker``; ``make run``'s one
worker takes it too), so a flood of small orders on the main queue never stands in front of it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from orders.models import Order


def priority_queue(task_queue: str) -> str:
    """The priority queue that goes with ``task_queue`` (as ``shop.celery.notify_queue``)."""
    return f"{task_queue}-priority"


def is_priority_checkout(*, amount: int, priority_amount: int, identity: str) -> bool:
    """Whether a new order of ``amount`` by ``identity`` goes in the priority lane."""
    if priority_amount > 0 and amount >= priority_amount:
        return True
    return Order.objects.filter(buyer_identity=identity, delivered_at__isnull=False).exists()


def payment_route(event: dict[str, Any]) -> dict[str, str]:
    """``apply_async`` options for processing a stored payment ``event``: the priority queue
    when it pays a priority order, else nothing (the default queue). One indexed lookup by
    order number, on the webhook's path, outside any lock; only checkout events pay orders."""
    if not str(event.get("type", "")).startswith("checkout.session."):
        return {}
    session = (event.get("data") or {}).get("object") or {}
    metadata = session.get("metadata") or {}
    order_no = str(metadata.get("order_no") or session.get("client_reference_id") or "")
    if not order_no:
        return {}
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT priority FROM {table} WHERE order_no = %s", [order_no])  # noqa: S608 - model metadata
        row = cursor.fetchone()
    if not row or not row[0]:
        return {}
    from celery import current_app

    return {"queue": priority_queue(current_app.conf.task_default_queue)}
