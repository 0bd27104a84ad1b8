"""Analytics tasks. Thin on purpose: each calls one service."""

from __future__ import annotations

from celery import shared_task

from analytics.rollups import rollups_refresh
from analytics.summary import weekly_summary_send


@shared_task
def refresh_rollups() -> int:
    """Periodic: keeps the change queue short, so a report's own refresh has little to do."""
    return rollups_refresh()


@shared_task
def send_weekly_summary() -> str:
    """Periodic (hourly): queues last week's summary in the outbox once it is due, once."""
    row = weekly_summary_send()
    return row.status if row is not None else "not due"
