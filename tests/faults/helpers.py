"""What the fault tests do to a running Kami from outside: pay over HTTP, look at locks."""

from __future__ import annotations

from django.conf import settings

from orders.payments.stripe_events import encode, sign_payload
from tests.faults.servers import http_request
from tests.stripe_helpers import WEBHOOK_URL


def post_webhook(port: int, event: dict) -> int:
    """A signed Stripe event to the running web server; its HTTP status."""
    payload = encode(event)
    status, _, _ = http_request(
        port,
        "POST",
        WEBHOOK_URL,
        payload,
        {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET),
        },
    )
    return status


def lock_waiters(connection) -> int:
    """Sessions of this database waiting on a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
