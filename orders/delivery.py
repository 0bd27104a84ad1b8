"""Delivering a paid order: keys reserved, order delivered, delivery and commissions recorded —
all in the caller's transaction, so it happens entirely or not at all.

Double delivery is impossible at the database level, whatever the code path:
``Delivery.order`` is unique (one delivery per order), ``CardKey(order, slot)`` is unique and a
sold key must name its order (one key, one order), and the status moves by conditional UPDATE.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Case, F, Q, Sum, When
from django.utils import timezone

from cardpool.models import CardKey
from cardpool.reservation import reserve_keys_for_order
from commissions.hooks import post_commissions_for_order
from orders.locks import lock_order, lock_product
from orders.models import Delivery, Order, OrderStatus, PaymentEvent
from orders.transitions import order_transition

logger = logging.getLogger(__name__)

DELIVERABLE = frozenset({OrderStatus.PAID, OrderStatus.BACKORDERED, OrderStatus.ON_HOLD})


def claim_time(order: Order, *, now: datetime) -> datetime:
    """When the order joined the line for keys: at checkout if it paid inside its hold (the
    hold reserved its place), otherwise when its payment arrived."""
    if order.paid_at and order.paid_at <= order.hold_expires_at:
        return order.created_at
    return order.paid_at or now


def keys_free_for(order: Order, *, now: datetime) -> int:
    """Keys this order may take: available keys minus the claims that stand before it in line.

    Claims are unpaid orders still inside their hold and paid orders waiting as backorders; each
    stands in line from its ``claim_time``. So a buyer who pays in time always gets their keys,
    backorders are served first-come first-served on restock, and a late payer takes only keys
    nobody else is entitled to.
    """
    available = CardKey.objects.filter(
        product_id=order.product_id, status=CardKey.Status.AVAILABLE
    ).count()
    t = claim_time(order, now=now)
    ahead = (
        Order.objects.filter(product_id=order.product_id)
        .exclude(pk=order.pk)
        .filter(
            Q(status=OrderStatus.PENDING, hold_expires_at__gt=now, created_at__lt=t)
            | Q(
                status=OrderStatus.BACKORDERED,
                paid_at__lte=F("hold_expires_at"),
                created_at__lt=t,
            )
            | Q(status=OrderStatus.BACKORDERED, paid_at__gt=F("hold_expires_at"), paid_at__lt=t)
        )
    )
    held = ahead.aggregate(total=Sum("quantity"))["total"] or 0
    return available - held


def order_deliver(
    *, order: Order, payment_event: PaymentEvent | None = None, actor=None
) -> Delivery | None:
    """Deliver a locked, paid ``order`` now, or leave it ``backordered`` if keys are short.

    Must run inside the caller's transaction with ``order`` locked (``lock_order``).
    """
    if order.status not in DELIVERABLE:
        raise ValueError(f"{order.order_no} is {order.status}, not deliverable")
    now = timezone.now()
    lock_product(order.product_id)
    key_ids: list[int] = []
    if keys_free_for(order, now=now) >= order.quantity:
        key_ids = reserve_keys_for_order(order=order, quantity=order.quantity, now=now)
    if not key_ids:
        if order.status != OrderStatus.BACKORDERED:
            order_transition(
                order=order,
                to_status=OrderStatus.BACKORDERED,
                message="Paid, but no keys are free: delivered automatically on restock.",
                actor=actor,
            )
        return None
    received = payment_event.received_at if payment_event else order.paid_at
    latency_ms = int((now - received).total_seconds() * 1000) if received else None
    delivery = Delivery.objects.create(
        order=order,
        key_count=len(key_ids),
        payment_event=payment_event,
        latency_ms=max(latency_ms, 0) if latency_ms is not None else None,
    )
    order_transition(
        order=order,
        to_status=OrderStatus.DELIVERED,
        kind="delivered",
        message=f"{len(key_ids)} key(s) delivered.",
        actor=actor,
        delivered_at=now,
    )
    post_commissions_for_order(order=order)
    from orders.tasks import send_delivery_email

    send_delivery_email.delay_on_commit(order.pk)
    return delivery


def order_deliver_backorder(*, order_id: int) -> bool:
    """Try one backordered order again (on restock). True if it was delivered."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order is None or order.status != OrderStatus.BACKORDERED:
            return False
        return order_deliver(order=order) is not None


def backorders_deliver(*, product_id: int) -> int:
    """Deliver the product's backorders in line order (``claim_time``) until keys run out."""
    delivered = 0
    ids = list(
        Order.objects.filter(product_id=product_id, status=OrderStatus.BACKORDERED)
        .annotate(
            claim=Case(
                When(paid_at__lte=F("hold_expires_at"), then=F("created_at")), default=F("paid_at")
            )
        )
        .order_by("claim", "pk")
        .values_list("pk", flat=True)
    )
    for order_id in ids:
        if not order_deliver_backorder(order_id=order_id):
            break  # the oldest could not be served: nobody behind it may jump the queue
        delivered += 1
    return delivered
