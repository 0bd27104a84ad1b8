"""Queueing a task once the transaction that asked for it has committed — and never failing
the caller when the broker is down.

Celery's ``delay_on_commit`` raises from inside the commit hook when Redis does not answer:
the work is already committed, yet the request answers 500 (a webhook the provider then
retries and we call a duplicate) or the task records a failure it did not have. Everything
Kami queues after a commit is also found by a sweep (stored payment events, outbox rows,
backorders), so a publish that fails only delays the work: it is logged, not raised.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_after_commit(task: Any, *args: Any, using: str | None = None, **kwargs: Any) -> None:
    """``task.apply_async(args, kwargs)`` after the current transaction commits (at once
    outside one); a publish error is logged and swallowed."""

    def publish() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs)
        except Exception as exc:
            logger.warning(
                "task %s not queued (%s: %s); a sweep will pick its work up",
                getattr(task, "name", task),
                type(exc).__name__,
                exc,
            )

    transaction.on_commit(publish, using=using, robust=True)
