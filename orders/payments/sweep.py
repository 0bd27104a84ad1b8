"""The inbox sweep: payment events stored but not processed, picked up within seconds.

An event is stranded when its task never ran (the broker was down when the webhook queued
it, a worker died holding it, Redis lost it) or its processing failed. The sweep runs every
few seconds — from beat and from a thread inside every worker, so neither a dead beat nor a
dead broker strands anything — and processes what it finds itself, in its own thread: it
needs nothing but the database.

The query is cheap: the partial index on unprocessed events (``paymentevent_unprocessed_idx``)
holds only the few rows not yet processed. Each event is processed with ``SKIP LOCKED``, so an
event some worker is processing right now is left to it, and sweeps running side by side
share the work instead of queueing behind each other. An event that fails in the sweep is
not taken again before ``next_attempt_at``, a backoff that doubles with its failures.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from orders.models import PaymentEvent
from orders.payments.processing import payment_event_process

logger = logging.getLogger(__name__)

# Older than this and still unprocessed: its task was lost, or is stuck behind a backlog
# (processing it here then only takes it out of line early; the queued task finds it done).
SWEEP_AFTER = timedelta(seconds=5)
# An event that failed this often needs a human (the failed-delivery alert says so).
SWEEP_MAX_ATTEMPTS = 30
BACKOFF_CAP = timedelta(minutes=10)


def sweep_backoff(attempts: int) -> timedelta:
    """When an event that failed ``attempts`` times may be swept again: 5 s, 10 s, 20 s, …"""
    return min(SWEEP_AFTER * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def payment_events_stranded(*, limit: int = 100, now: datetime | None = None) -> list[int]:
    """Ids of stranded events, the least-tried and longest-waiting first."""
    now = now or timezone.now()
    return list(
        PaymentEvent.objects.filter(
            processed_at__isnull=True,
            received_at__lt=now - SWEEP_AFTER,
            attempts__lt=SWEEP_MAX_ATTEMPTS,
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("attempts", "received_at")
        .values_list("pk", flat=True)[:limit]
    )


def payment_events_sweep(*, limit: int = 100) -> int:
    """Process stranded events here and now; returns how many this call processed. A failure
    is recorded on the event and backs it off, never raised."""
    processed = 0
    for event_id in payment_events_stranded(limit=limit):
        try:
            processed += payment_event_process(event_id=event_id, skip_locked=True)
        except Exception as exc:
            logger.warning("stranded payment event %s failed again: %s", event_id, exc)
            event = PaymentEvent.objects.filter(pk=event_id).only("attempts").first()
            if event is not None:
                PaymentEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
                    next_attempt_at=timezone.now() + sweep_backoff(event.attempts)
                )
    return processed
