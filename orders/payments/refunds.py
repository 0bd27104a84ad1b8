"""Refunding a paid order through its payment provider.

The refund itself is only *asked for* here; the order becomes ``refunded`` when the provider's
``charge.refunded`` event comes back through the webhook inbox — for Stripe a real event, for
the sandbox a signed Stripe-format one — so there is exactly one code path that records
refunds and claws back commissions. Called outside any transaction: it makes a network call.
"""

from __future__ import annotations

import logging
import secrets

import stripe
from django.conf import settings
from django.db import transaction

from core.errors import InvalidInput, PaymentProviderError
from orders.events import OrderEventKind, event_refund_asked
from orders.locks import lock_order
from orders.models import Order, OrderStatus
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import build_event, encode, sign_payload
from orders.transitions import PAID_STATUSES, PAID_UNDELIVERED, order_transition

logger = logging.getLogger(__name__)


class OrderChanged(InvalidInput):
    """The order is no longer in the state the refund was asked for (someone acted first)."""

    code = "order_changed"


def _request_full_refund(
    *, order: Order, expect_status: str | None, actor, kind: OrderEventKind, message: str
) -> Order:
    """Move an undelivered order to ``refund_requested`` before the provider is asked, under
    the order lock: from then on nothing may deliver it (an approval racing this finds the
    order changed). Committed at once: the provider call that follows is a network call."""
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked is None or (expect_status is not None and locked.status != expect_status):
            raise OrderChanged(f"Order {order.order_no} changed meanwhile; nothing was refunded.")
        if locked.status in PAID_UNDELIVERED:
            order_transition(
                order=locked,
                to_status=OrderStatus.REFUND_REQUESTED,
                kind=kind,
                message=message,
                actor=actor,
            )
        return locked


def _refund_refused(*, order: Order, actor) -> None:
    """The provider refused: an order waiting for its refund goes back to the owner."""
    with transaction.atomic():
        locked = lock_order(order.pk)
        if locked is not None and locked.status == OrderStatus.REFUND_REQUESTED:
            order_transition(
                order=locked,
                to_status=OrderStatus.ON_HOLD,
                kind=OrderEventKind.REFUND_FAILED,
                message="The payment provider refused the refund: review it again.",
                actor=actor,
            )


def payment_refund(
    *,
    order: Order,
    amount: int | None = None,
    actor=None,
    expect_status: str | None = None,
    request_kind: OrderEventKind = OrderEventKind.REFUND_REQUESTED,
    request_message: str = "A full refund was asked of the payment provider.",
) -> None:
    """Refund ``amount`` (default: everything not yet refunded) of a paid ``order``.

    ``expect_status``: refund only if the order is still in that status (the review queue's
    "reject and refund" expects ``on_hold``), checked under the order lock.
    ``request_kind``/``request_message``: the history row of an undelivered order's move to
    ``refund_requested`` (the automatic refund of a stale backorder names itself there).
    """
    order.refresh_from_db()
    paid = order.paid_amount or order.amount
    remaining = paid - order.refunded_amount
    amount = remaining if amount is None else amount
    if order.status not in PAID_STATUSES or not order.payment_intent:
        raise InvalidInput(f"Order {order.order_no} has no payment to refund.")
    if not 0 < amount <= remaining:
        raise InvalidInput(f"Refund between 0 and {remaining} minor units.")
    if amount == remaining:
        order = _request_full_refund(
            order=order,
            expect_status=expect_status,
            actor=actor,
            kind=request_kind,
            message=request_message,
        )
    elif expect_status is not None and order.status != expect_status:
        raise OrderChanged(f"Order {order.order_no} changed meanwhile; nothing was refunded.")
    event_refund_asked(order, amount=amount, actor=actor)
    if order.payment_provider == "stripe":
        try:
            stripe.Refund.create(
                api_key=settings.STRIPE_SECRET_KEY,
                payment_intent=order.payment_intent,
                amount=amount,
                idempotency_key=f"refund-{order.order_no}-{order.refunded_amount + amount}",
            )
        except stripe.StripeError as exc:
            logger.error("Stripe refund failed for %s: %s", order.order_no, type(exc).__name__)
            _refund_refused(order=order, actor=actor)
            raise PaymentProviderError("Stripe refused or did not answer the refund.") from None
        return
    charge = {
        "id": f"ch_sandbox_{secrets.token_hex(8)}",
        "object": "charge",
        "payment_intent": order.payment_intent,
        "amount": paid,
        "amount_refunded": order.refunded_amount + amount,
        "currency": (order.paid_currency or order.currency).lower(),
        "refunded": order.refunded_amount + amount >= paid,
    }
    payload = encode(build_event("charge.refunded", charge))
    payment_event_receive(
        payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    )
