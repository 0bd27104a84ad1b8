"""The webhook inbox: verify the raw body, store the event once, enqueue its processing.

As dj-stripe does: the signature is checked against the raw bytes (never re-serialised JSON);
the event is stored under a unique (provider, event id) so a replay finds the existing row and
does nothing; processing happens in a task enqueued after the row commits.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from stripe import SignatureVerificationError, WebhookSignature

from orders.models import PaymentEvent
from orders.risk import risk_control
from orders.tasks import process_payment_event

logger = logging.getLogger(__name__)


class InvalidWebhook(Exception):
    """Missing, malformed, stale or forged signature, or a body that is not an event."""


# The request headers kept with an event: what the signature and a later diagnosis need.
KEPT_HEADERS = ("Stripe-Signature", "Content-Type", "User-Agent")


def payment_event_receive(
    *,
    payload: bytes,
    signature: str | None,
    client_ip: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[PaymentEvent, bool]:
    """Verify and store a Stripe-format event; return ``(event, created)``."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    try:
        WebhookSignature.verify_header(
            payload, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except (SignatureVerificationError, ValueError, IndexError) as exc:
        logger.warning("webhook signature rejected: %s", type(exc).__name__)
        risk_control().webhook_signature_failed(client_ip=client_ip)
        raise InvalidWebhook("signature verification failed") from None
    try:
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
        if not isinstance(event.get("data", {}).get("object"), dict):
            raise ValueError("no data.object")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidWebhook("body is not a Stripe event") from None
    try:
        with transaction.atomic():
            kept = {name: value for name, value in (headers or {}).items() if name in KEPT_HEADERS}
            row = PaymentEvent.objects.create(
                provider="stripe",
                event_id=event_id,
                type=event_type,
                payload=event,
                body=payload,
                headers=kept | {"Stripe-Signature": signature or ""},
            )
            process_payment_event.delay_on_commit(row.pk)
    except IntegrityError:
        return PaymentEvent.objects.get(provider="stripe", event_id=event_id), False
    return row, True


def payment_event_reverify(*, event: PaymentEvent) -> bool:
    """Whether the stored body still carries a valid signature from the webhook secret in
    force (timestamp tolerance aside: the event is old by now). Events stored before raw
    bodies were kept have none and cannot be verified again."""
    body = bytes(event.body or b"")
    signature = (event.headers or {}).get("Stripe-Signature", "")
    if not body or not signature:
        return False
    try:
        WebhookSignature.verify_header(body, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (SignatureVerificationError, ValueError, IndexError):
        return False
    return True
