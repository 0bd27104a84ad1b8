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
from django.utils import timezone

from orders.models import Order
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import build_event, encode, sign_payload
from orders.transitions import PAID_STATUSES, order_note
from shop.errors import InvalidInput, PaymentProviderError

logger = logging.getLogger(__name__)


def payment_refund(*, order: Order, amount: int | None = None, actor=None) -> None:
    """Refund ``amount`` (default: everything not yet refunded) of a paid ``order``."""
    order.refresh_from_db()
    paid = order.paid_amount or order.amount
    remaining = paid - order.refunded_amount
    amount = remaining if amount is None else amount
    if order.status not in PAID_STATUSES or not order.payment_intent:
        raise InvalidInput(f"Order {order.order_no} has no payment to refund.")
    if not 0 < amount <= remaining:
        raise InvalidInput(f"Refund between 0 and {remaining} minor units.")
    if amount == remaining:
        # A full refund is underway: from now on nothing may deliver this order, even if an
        # approval races the provider's answer.
        Order.objects.filter(pk=order.pk, refund_requested_at__isnull=True).update(
            refund_requested_at=timezone.now()
        )
    order_note(order=order, kind="refund_requested", data={"amount": amount}, actor=actor)
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
