"""Refunding backorders that waited too long: a paid buyer never waits for keys forever.

A buyer can pay and find no key: they checked out without a hold (the product's hold share
was taken, ``orders.holds``) and someone paid first, or they paid after their hold lapsed.
They wait as a ``backordered`` order, first in line for the next keys: a restock, or a hold
that lapses unpaid. If none comes within the owner's window
(``ShopSettings.backorder_refund_after_hours``, 24 hours by default, 0 for never), the order
is refunded in full through its payment provider, and the buyer's money goes back.

Exactly once, by the database: the refund is asked through the same path as the owner's
(``payment_refund``: ``refund_requested`` under the order lock, committed before the provider
is called, ``refunded`` when the provider's ``charge.refunded`` comes back), and that step's
history row has the kind ``backorder_refund``, which ``OrderEvent`` allows once per order
(``orderevent_one_backorder_refund``). Two sweeps racing, a retried task, a restock landing at
the same moment: one of them moves the order, the others find it changed and do nothing.
Stripe gets an idempotency key too. A refund the provider refuses sends the order to the
owner's review (``refund_failed`` → ``on_hold``), and it is never refunded automatically again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.errors import KamiError
from orders.events import OrderEventKind
from orders.models import Order, OrderEvent, OrderStatus
from orders.payments.refunds import OrderChanged, payment_refund
from shop.models import ShopSettings

logger = logging.getLogger(__name__)

SWEEP_BATCH = 100


def refund_due_at(order: Order, *, shop: ShopSettings) -> datetime | None:
    """When a backordered order is refunded if no keys come first (None: never)."""
    hours = shop.backorder_refund_after_hours
    if not hours or order.backordered_at is None:
        return None
    return order.backordered_at + timedelta(hours=hours)


def backorders_overdue(*, now: datetime, shop: ShopSettings) -> list[int]:
    """Ids of backorders past the owner's window that were never refunded automatically."""
    if not shop.backorder_refund_after_hours:
        return []
    cutoff = now - timedelta(hours=shop.backorder_refund_after_hours)
    refunded_before = OrderEvent.objects.filter(
        order=OuterRef("pk"), kind=OrderEventKind.BACKORDER_REFUND
    )
    return list(
        Order.objects.filter(status=OrderStatus.BACKORDERED, backordered_at__lte=cutoff)
        .exclude(Exists(refunded_before))
        .order_by("backordered_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )


def backorder_refund(*, order_id: int, shop: ShopSettings, now: datetime) -> bool:
    """Refund one overdue backorder in full through its provider. True if this call asked for
    it; False if the order was served, refunded or changed meanwhile. Call outside any
    transaction: the provider is called over the network."""
    order = Order.objects.filter(pk=order_id, status=OrderStatus.BACKORDERED).first()
    due = refund_due_at(order, shop=shop) if order is not None else None
    if order is None or due is None or due > now:
        return False
    hours = shop.backorder_refund_after_hours
    try:
        payment_refund(
            order=order,
            expect_status=OrderStatus.BACKORDERED,
            request_kind=OrderEventKind.BACKORDER_REFUND,
            request_message=(
                f"No keys came within {hours} hour{'s' if hours != 1 else ''} of payment: "
                "refunded in full automatically."
            ),
        )
    except OrderChanged:
        return False
    except KamiError as exc:
        # The provider refused or failed: the order is back with the owner (on hold).
        logger.warning("automatic refund of backorder %s failed: %s", order.order_no, exc.message)
        return False
    return True


def backorders_refund_overdue(*, now: datetime | None = None) -> int:
    """Refund every overdue backorder (periodic). Returns how many refunds were asked."""
    now = now or timezone.now()
    shop = ShopSettings.load()
    asked = 0
    for order_id in backorders_overdue(now=now, shop=shop):
        try:
            asked += backorder_refund(order_id=order_id, shop=shop, now=now)
        except Exception:
            # One broken order must not keep the others waiting; it is retried next sweep.
            logger.exception("automatic refund of backorder %s crashed", order_id)
    return asked
