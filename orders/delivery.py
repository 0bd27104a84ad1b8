"""Delivering a paid order: keys reserved, order delivered, delivery and commissions recorded —
all in the caller's transaction, so it happens entirely or not at all.

The buyer's message is an outbox row written in the same transaction (``orders.outbox``).

Double delivery is impossible at the database level, whatever the code path:
``Delivery.order`` is unique (one delivery per order), ``CardKey(order, slot)`` is unique and a
sold key must name its order (one key, one order), and the status moves by conditional UPDATE.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from cardpool.reservation import keys_release, keys_sell_reserved, keys_take_free
from cardpool.selectors import free_key_count
from commissions.services import commissions_post_for_order
from orders.events import OrderEventKind, event_commission_skipped
from orders.followups.services import followups_schedule
from orders.locks import lock_order, lock_product
from orders.models import Delivery, Order, OrderStatus, PaymentEvent
from orders.outbox.services import delivery_messages_enqueue
from orders.stock import backorder_demand
from orders.transitions import Step, order_transition_path

logger = logging.getLogger(__name__)

DELIVERABLE = frozenset({OrderStatus.PAID, OrderStatus.BACKORDERED, OrderStatus.ON_HOLD})


def claim_time(order: Order, *, now: datetime) -> datetime:
    """When the order joined the line for keys (``Order.queued_at``): at checkout if it paid
    inside its hold (the hold reserved its place), otherwise when its payment arrived. An order
    coming out of review joins the line *now*: on hold it claimed nothing and its keys were
    sold on to others, who must not lose them to it."""
    if order.status == OrderStatus.ON_HOLD or order.queued_at is None:
        return now
    return order.queued_at


def _keys_top_up(*, order: Order, slots: list[int], now: datetime) -> bool:
    """Fill the order's ``slots`` with keys it did not reserve (it paid late, its hold was
    expired before its payment was processed, it waited as a backorder or on hold).

    Takes the product's line-keeper lock: backorders queued before this order are owed the
    free keys first. An order that paid inside its hold also stands before pending orders that
    checked out after it, and may take their reserved keys.
    """
    lock_product(order.product_id)
    t = claim_time(order, now=now)
    ahead = backorder_demand(order.product_id, before=t, exclude_id=order.pk)
    if ahead and free_key_count(order.product_id, now=now) - ahead < len(slots):
        return False
    later_holds: list[int] = []
    if not ahead and order.queued_at is not None and order.queued_at == order.created_at:
        later_holds = list(
            Order.objects.filter(
                product_id=order.product_id,
                status=OrderStatus.PENDING,
                hold_expires_at__gt=now,
                created_at__gt=order.created_at,
            ).values_list("pk", flat=True)
        )
    filled = keys_take_free(
        order_id=order.pk,
        product_id=order.product_id,
        slots=slots,
        now=now,
        also_from_orders=later_holds,
    )
    return len(filled) == len(slots)


def order_deliver(
    *,
    order: Order,
    payment_event: PaymentEvent | None = None,
    actor=None,
    pay_step: Step | None = None,
    pay_fields: dict[str, Any] | None = None,
) -> Delivery | None:
    """Deliver a locked, paid ``order`` now, or leave it ``backordered`` if keys are short.

    Must run inside the caller's transaction with ``order`` locked (``lock_order``). The usual
    case is one UPDATE on the keys its checkout reserved; only an order that lost (part of) its
    reservation looks for other keys, in line order. ``pay_step``/``pay_fields``: the order is
    being paid right now; the payment and the delivery (or backorder) are then one status
    UPDATE through both steps.
    """
    status = OrderStatus.PAID if pay_step is not None else order.status
    if status not in DELIVERABLE:
        raise ValueError(f"{order.order_no} is {order.status}, not deliverable")
    now = timezone.now()
    steps = [pay_step] if pay_step is not None else []
    fields = dict(pay_fields or {})
    if status == OrderStatus.ON_HOLD:
        fields["queued_at"] = now
    for name, value in fields.items():
        setattr(order, name, value)  # the line order below reads the order as it will be
    sold = keys_sell_reserved(order_id=order.pk, now=now)
    missing = sorted(set(range(1, order.quantity + 1)) - set(sold))
    if missing and not _keys_top_up(order=order, slots=missing, now=now):
        keys_release(order_id=order.pk, undelivered=True)
        if status != OrderStatus.BACKORDERED:
            steps.append(
                Step(
                    OrderStatus.BACKORDERED,
                    kind=OrderEventKind.BACKORDERED,
                    message="Paid, but no keys are free: delivered automatically on restock.",
                )
            )
            fields["backordered_at"] = now  # the automatic refund's clock starts here
        if steps:
            order_transition_path(order=order, steps=steps, actor=actor, **fields)
        return None
    # Payment-to-key latency means something only for a delivery straight from a payment;
    # a restock or an approval days later would only distort the alert and the numbers.
    latency_ms = (
        max(0, int((now - payment_event.received_at).total_seconds() * 1000))
        if payment_event is not None
        else None
    )
    delivery = Delivery.objects.create(
        order=order, key_count=order.quantity, payment_event=payment_event, latency_ms=latency_ms
    )
    steps.append(
        Step(
            OrderStatus.DELIVERED,
            kind=OrderEventKind.DELIVERED,
            message=f"{order.quantity} key(s) delivered.",
        )
    )
    order_transition_path(order=order, steps=steps, actor=actor, delivered_at=now, **fields)
    posting = commissions_post_for_order(order=order)
    if posting.skipped:
        event_commission_skipped(order, reason=posting.skipped)
    # The buyer's message (and the owner's callback) are rows of this transaction: committed
    # with the keys or not at all, and sent by the outbox whatever the broker does next.
    delivery_messages_enqueue(order=order)
    followups_schedule(order=order, now=now)
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
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)
    )
    for order_id in ids:
        try:
            served = order_deliver_backorder(order_id=order_id)
        except Exception:
            # One broken order must not hold every backorder behind it hostage; it stays
            # backordered, is retried by the periodic task, and the failure is in the log.
            logger.exception("backorder %s could not be delivered", order_id)
            continue
        if not served:
            break  # the first in line could not be served: nobody behind it may jump the queue
        delivered += 1
    return delivered
