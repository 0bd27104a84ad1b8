"""Queueing a task once the transaction that asked for it has committed — and never failing
the caller when the broker is down.

Celery's ``delay_on_commit`` raises from inside the commit hook when Redis does not answer:
the work is already committed, yet the request answers 500 (a webhook the provider then
retries and we call a duplicate) or the task records a failure it did not have. Everything
Kami queues after a commit is also found by a sweep (stored payment events, outbox rows,
backorders), so a publish that fails only delays the work: it is logged, not raised.

A failed publish costs its retries (most of a second); during an outage every webhook and
every delivery would pay that. So after one fails, publishes to that broker are skipped for
``BROKER_REST_SECONDS`` (per process), and the sweeps do the work meanwhile. Tasks that run
in-process (no broker) are never skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

BROKER_REST_SECONDS = 5.0
_resting_until: dict[str, float] = {}
_lock = threading.Lock()


def _broker_of(task: Any) -> str | None:
    """The broker ``task`` publishes to, or None when it runs in-process."""
    conf = getattr(getattr(task, "app", None), "conf", None)
    if conf is None or conf.task_always_eager:
        return None
    return str(conf.broker_url)


def _resting(broker: str | None) -> bool:
    return broker is not None and time.monotonic() < _resting_until.get(broker, 0.0)


def enqueue_after_commit(
    task: Any,
    *args: Any,
    using: str | None = None,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """``task.apply_async(args, kwargs, **options)`` after the current transaction commits (at
    once outside one); a publish error is logged and swallowed. ``options`` are Celery's
    routing options (``queue``, say)."""

    def publish() -> None:
        broker = _broker_of(task)
        if _resting(broker):
            logger.info("task %s not queued: the broker failed just now", task.name)
            return
        try:
            task.apply_async(args=args, kwargs=kwargs, **(options or {}))
        except Exception as exc:
            if broker is not None:
                with _lock:
                    _resting_until[broker] = time.monotonic() + BROKER_REST_SECONDS
            logger.warning(
                "task %s not queued (%s: %s); a sweep will pick its work up",
                getattr(task, "name", task),
                type(exc).__name__,
                exc,
            )

    transaction.on_commit(publish, using=using, robust=True)
