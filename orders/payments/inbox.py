"""The webhook inbox: verify the raw body, store the event once, enqueue its processing.

Once the event is stored the webhook answers 200, whatever the broker does: the publish
after the commit is logged if it fails (``core.after_commit``) and the sweep takes over.

As dj-stripe does: the signature is checked against the raw bytes (never re-serialised JSON);
the event is stored under a unique (provider, event id) so a replay finds the existing row and
does nothing; processing happens in a task enqueued after the row commits.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from stripe import SignatureVerificationError, WebhookSignature

from core.after_commit import enqueue_after_commit
from orders.models import PaymentEvent
from orders.priority import payment_route
from orders.risk import risk_control
from orders.tasks import process_payment_event

logger = logging.getLogger(__name__)


class InvalidWebhook(Exception):
    """Missing, malformed, stale or forged signature, or a body that is not an event."""

    code = "invalid_signature"


class InvalidEvent(InvalidWebhook):
    """A correctly signed body that is not a sane Stripe event: never stored, never retried."""

    code = "invalid_event"


class WebhookTooLarge(InvalidWebhook):
    """A body over ``MAX_BODY_BYTES``: refused before it is read or verified."""

    code = "too_large"


# Stripe events are a few KB; anything near this is not one.
MAX_BODY_BYTES = 256 * 1024
# Stripe objects nest a handful of levels (expanded objects a few more).
MAX_DEPTH = 32
# As PaymentEvent.event_id and PaymentEvent.type.
MAX_EVENT_ID_LENGTH = 255
MAX_EVENT_TYPE_LENGTH = 80
# Amounts in minor units the handlers read: exact in any JSON reader, and well inside bigint.
MAX_AMOUNT = 2**53
AMOUNT_FIELDS = ("amount_total", "amount", "amount_refunded")
# ``created`` becomes a datetime: keep it inside what datetime (year 9999) represents.
MAX_CREATED = 253402300799


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
    if len(payload) > MAX_BODY_BYTES:
        raise WebhookTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    secret = settings.STRIPE_WEBHOOK_SECRET
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    try:
        WebhookSignature.verify_header(payload, signature, secret, tolerance=tolerance)
        # Stripe's check only refuses timestamps too far in the past: refuse the future too.
        if _signature_timestamp(signature or "") > time.time() + tolerance:
            raise SignatureVerificationError("timestamp in the future", signature, payload)
    except (SignatureVerificationError, ValueError, IndexError) as exc:
        logger.warning("webhook signature rejected: %s", type(exc).__name__)
        risk_control().webhook_signature_failed(client_ip=client_ip)
        raise InvalidWebhook("signature verification failed") from None
    event, event_id, event_type = _parse_event(payload)
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
            # Robustly: the event is stored, so the webhook answers 200 whatever the broker
            # does; if this publish fails the inbox sweep processes the event within seconds.
            enqueue_after_commit(process_payment_event, row.pk, options=payment_route(event))
    except IntegrityError:
        existing = PaymentEvent.objects.get(provider="stripe", event_id=event_id)
        if existing.processed_at is None:
            # The provider retried an event we still owe it: queue it again (its first
            # publish may be what failed); processing it twice is a no-op.
            enqueue_after_commit(
                process_payment_event, existing.pk, options=payment_route(existing.payload)
            )
        return existing, False
    return row, True


def _signature_timestamp(header: str) -> int:
    """The ``t=`` of a ``Stripe-Signature`` header, read exactly as stripe's verifier reads it."""
    items = [item.split("=", 2) for item in header.split(",")]
    return int([item[1] for item in items if item[0] == "t"][0])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which jsonb refuses
        raise ValueError("float out of range")
    return value


def _check_string(value: str) -> None:
    if "\x00" in value:  # PostgreSQL text and jsonb refuse NUL
        raise ValueError("NUL in a string")
    value.encode("utf-8")  # a lone surrogate escape (\ud800) cannot be stored either


def _check_tree(root: Any) -> None:
    """Nesting depth and strings of a parsed body, iteratively (no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError("nested too deeply")
            if isinstance(node, dict):
                for key in node:
                    _check_string(key)
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)


def _is_int_in(value: Any, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def _parse_event(payload: bytes) -> tuple[dict, str, str]:
    """The event a signed body holds, if it is one the handlers can act on; else InvalidEvent.

    Everything a handler reads, or the database stores, is checked here, so a signed body can
    neither crash the request nor become an event whose processing fails forever."""
    try:
        event = json.loads(payload, parse_constant=_reject_constant, parse_float=_finite_float)
        _check_tree(event)
    except (ValueError, RecursionError, UnicodeError):  # JSONDecodeError is a ValueError
        raise InvalidEvent("body is not a Stripe event") from None
    if not isinstance(event, dict):
        raise InvalidEvent("body is not a Stripe event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise InvalidEvent("event id missing or too long")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_EVENT_TYPE_LENGTH:
        raise InvalidEvent("event type missing or too long")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidEvent("event has no data.object")
    created = event.get("created")
    if created is not None and not _is_int_in(created, MAX_CREATED):
        raise InvalidEvent("created is not a timestamp")
    for field in AMOUNT_FIELDS:
        value = obj.get(field)
        if value is not None and not _is_int_in(value, MAX_AMOUNT):
            raise InvalidEvent(f"{field} is not an amount")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidEvent("metadata is not an object")
    return event, event_id, event_type


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
