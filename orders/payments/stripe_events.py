"""Building and signing Stripe-format events exactly as Stripe does (``Stripe-Signature`` v1).

The sandbox's Pay button and the tests use this, so a sandbox payment travels through the very
same verification, inbox and processing as a real Stripe event.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from stripe import WebhookSignature


def sign_payload(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``: ``t=…,v1=HMAC-SHA256``."""
    return WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp=timestamp
    )


def build_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_session_object(
    order,
    *,
    session_id: str | None = None,
    amount_total: int | None = None,
    currency: str | None = None,
    payment_status: str = "paid",
    payment_intent: str | None = None,
) -> dict[str, Any]:
    return {
        "id": session_id or order.checkout_session_id or f"cs_test_{secrets.token_hex(12)}",
        "object": "checkout.session",
        "client_reference_id": order.order_no,
        "metadata": {"order_no": order.order_no},
        "amount_total": order.amount if amount_total is None else amount_total,
        "currency": (currency or order.currency).lower(),
        "customer_email": order.email,
        "mode": "payment",
        "payment_status": payment_status,
        "status": "complete" if payment_status == "paid" else "open",
        "payment_intent": payment_intent or f"pi_{secrets.token_hex(12)}",
    }


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
