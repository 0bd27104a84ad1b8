"""Build and post Stripe-format events signed exactly as Stripe signs them."""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.test import Client

from orders.payments.stripe_events import build_event, checkout_session_object, encode, sign_payload

WEBHOOK_URL = "/payments/stripe/webhook"


def post_event(
    client: Client,
    event: dict,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    signature: str | None = None,
):
    payload = encode(event)
    header = (
        signature
        if signature is not None
        else sign_payload(
            payload,
            secret or settings.STRIPE_WEBHOOK_SECRET,
            timestamp=timestamp or int(time.time()),
        )
    )
    return client.post(
        WEBHOOK_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def completed_event(order, **session_kwargs) -> dict:
    return build_event(
        "checkout.session.completed", checkout_session_object(order, **session_kwargs)
    )


def refund_event(
    payment_intent: str, *, amount: int, amount_refunded: int, currency: str = "usd"
) -> dict:
    return build_event(
        "charge.refunded",
        {
            "id": "ch_test_" + payment_intent[-8:],
            "object": "charge",
            "payment_intent": payment_intent,
            "amount": amount,
            "amount_refunded": amount_refunded,
            "currency": currency,
            "refunded": amount_refunded >= amount,
        },
    )


def pretty(event: dict) -> str:
    return json.dumps(event, indent=2)
