"""Build and post Stripe-format events signed exactly as Stripe signs them."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import stripe
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


class StripeRefundsHTTP(stripe.HTTPClient):
    """Stripe's API on the wire, for refunds: the one outbound call stubbed (as
    ``RecordingStripeHTTP`` in ``test_stripe_checkout.py`` does for sessions). Remembers
    each call's method, URL, form and headers; answers ``status`` like Stripe would."""

    name = "refunds"

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict, dict]] = []
        self.status = status

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        form = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.calls.append((method, url, form, dict(headers or {})))
        if self.status != 200:
            body = {"error": {"type": "invalid_request_error", "message": "Refund refused"}}
            return json.dumps(body), self.status, {}
        refund = {
            "id": f"re_test_{len(self.calls)}",
            "object": "refund",
            "amount": int(form.get("amount") or 0),
            "payment_intent": form.get("payment_intent"),
            "status": "succeeded",
        }
        return json.dumps(refund), 200, {}

    def close(self):
        pass
