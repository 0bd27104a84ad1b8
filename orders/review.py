"""The owner's review of held orders: approve (deliver) or reject and refund. Order services:
each decides under the order lock, and only one of two racing decisions can win.

Approve delivers inside a transaction with the order locked. Reject moves the order to
``refund_requested`` under the same lock and commits *before* the payment provider is called
(a network call), so an approval racing it finds the order changed and leaves it alone; the
order becomes ``refunded`` when the provider's signed ``charge.refunded`` comes back through the
inbox (the sandbox sends one locally).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import KamiError
from orders.delivery import order_deliver
from orders.locks import lock_order
from orders.models import Order, OrderStatus
from orders.payments.refunds import OrderChanged, payment_refund


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review action did: ``acted`` is False when the order was left alone."""

    order: Order | None
    result: str
    acted: bool


def order_review_approve(*, order_id: int, actor) -> ReviewOutcome:
    """Deliver a held order through the normal delivery path (or backorder it if keys ran
    out meanwhile). Must run inside the caller's transaction (the audit row joins it)."""
    order = lock_order(order_id)
    if order is None:
        return ReviewOutcome(None, "no such order", False)
    if order.status != OrderStatus.ON_HOLD:
        return ReviewOutcome(order, f"not on hold ({order.status}), left alone", False)
    delivery = order_deliver(order=order, actor=actor)
    result = "delivered" if delivery is not None else "backordered: no keys free"
    return ReviewOutcome(order, result, True)


def order_review_reject_refund(*, order_id: int, actor) -> ReviewOutcome:
    """Refund a held order in full through its payment provider. Call outside any
    transaction: the provider is called over the network."""
    order = Order.objects.select_related("product").filter(pk=order_id).first()
    if order is None:
        return ReviewOutcome(None, "no such order", False)
    if order.status != OrderStatus.ON_HOLD:
        return ReviewOutcome(order, f"not on hold ({order.status}), left alone", False)
    try:
        payment_refund(order=order, actor=actor, expect_status=OrderStatus.ON_HOLD)
    except OrderChanged:
        order.refresh_from_db()
        return ReviewOutcome(order, f"not on hold ({order.status}), left alone", False)
    except KamiError as exc:
        return ReviewOutcome(order, f"refund failed: {exc.message}", False)
    return ReviewOutcome(order, "refund requested", True)
