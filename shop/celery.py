"""The Celery application. Without ``REDIS_URL`` tasks run eagerly, after commit, in-process.

Three queues: ``KAMI_TASK_QUEUE`` (default ``kami``) for the work a buyer waits on — payment
events, deliveries, backorders, expiry —, ``<that>-priority`` for the payment events of
priority orders (high amounts, returning buyers: ``orders.priority``, which routes them when
the webhook stores the event) so a flood of small orders never delays them, and
``<that>-notify`` for side effects — delivery emails and owner alerts — so a slow mail server
or a burst of emails never delays a key. Production runs one worker per queue
(``docker-compose.yml``); ``make run`` and the tests run one worker consuming all three.

Every worker also runs the sweeps of stranded work in a thread of its own (``_Sweeper``):
payment events whose task was lost and outbox messages nobody sent. It calls them directly,
not through the broker, so they keep running while Redis is down and whether or not beat is
alive.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_ready,
    worker_shutting_down,
)

from core.log_redaction import install_on_handlers, secret_scope_enter, secret_scope_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("kami")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

SIDE_EFFECT_TASKS = frozenset(
    {
        "orders.tasks.dispatch_messages",
        "orders.tasks.send_delivery_email",
        "riskrules.tasks.send_alert_email",
        "riskrules.tasks.check_alerts",
        "riskrules.tasks.check_stock_alerts",
        "riskrules.tasks.check_risk_spike",
        "analytics.tasks.refresh_rollups",
        "analytics.tasks.send_weekly_summary",
    }
)


def notify_queue(task_queue: str) -> str:
    """The side-effect queue that goes with ``task_queue``."""
    return f"{task_queue}-notify"


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any):
    """Send side effects to the notify queue of whatever the default queue is right now (the
    tests and benchmarks change it per run)."""
    if name in SIDE_EFFECT_TASKS:
        return {"queue": notify_queue(app.conf.task_default_queue)}
    return None


app.conf.task_routes = (route_task,)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger: Any = None, **kwargs: Any) -> None:
    """A worker replaces the root logger's handlers with its own (``worker_hijack_root_logger``):
    they get the same redaction filter as ``LOGGING``'s."""
    if logger is not None:
        install_on_handlers(logger.handlers)


@task_prerun.connect
def _enter_secret_scope(task_id: str | None = None, **kwargs: Any) -> None:
    """Each task is its own secret scope, like a request (``core.log_redaction``)."""
    if task_id:
        secret_scope_enter(task_id)


@task_postrun.connect
def _leave_secret_scope(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id:
        secret_scope_exit(task_id)


@task_postrun.connect
def _keep_connections(**kwargs: Any) -> None:
    """Keep the worker's database connection between tasks (``CELERY_DB_REUSE_MAX`` stops
    Celery closing it around every task, which cost a connect per delivery), but drop it when
    a task saw it fail or it outlived ``CONN_MAX_AGE``, as Django does between requests.

    Unlike Django's ``close_old_connections`` this does not re-arm the health check, which
    would cost a ``SELECT 1`` per task: a connection that broke between tasks fails the next
    task's first query, that task is retried, and this hook then closes the connection."""
    task = kwargs.get("task")
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        expired = conn.close_at is not None and time.monotonic() >= conn.close_at
        if conn.errors_occurred or expired or conn.in_atomic_block:
            conn.close()


SWEEPER_THREAD = "kami-sweeper"


class _Sweeper(threading.Thread):
    """Every ``KAMI_WORKER_SWEEP_SECONDS``: ``orders.tasks.sweep_stranded_work``, at once when
    the worker is ready. Its database connection is its own (Django's are per thread), kept
    between passes, dropped when it broke, and labelled ``…-sweeper`` in PostgreSQL's
    ``application_name`` so it is told apart from the task connection."""

    def __init__(self, interval: float) -> None:
        super().__init__(name=SWEEPER_THREAD, daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from orders.tasks import sweep_stranded_work

        while not self.stopping.is_set():
            try:
                connection.close_if_unusable_or_obsolete()
                events, messages = sweep_stranded_work()
                if events or messages:
                    logger.info("sweep: %s payment event(s), %s message(s)", events, messages)
            except Exception as exc:
                logger.warning("sweep failed: %s: %s", type(exc).__name__, exc)
                connection.close()
            self.stopping.wait(self.interval)
        connection.close()


_sweepers: list[_Sweeper] = []


@worker_ready.connect
def _start_sweeper(**kwargs: Any) -> None:
    from django.conf import settings
    from django.db.backends.signals import connection_created

    interval = float(getattr(settings, "KAMI_WORKER_SWEEP_SECONDS", 0) or 0)
    if interval <= 0:
        return
    connection_created.connect(_label_sweeper_connection, dispatch_uid="kami-sweeper-label")
    sweeper = _Sweeper(interval)
    _sweepers.append(sweeper)
    sweeper.start()


@worker_shutting_down.connect
def _stop_sweeper(**kwargs: Any) -> None:
    for sweeper in _sweepers:
        sweeper.stopping.set()


def _label_sweeper_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    if threading.current_thread().name != SWEEPER_THREAD or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('application_name', "
            "left(coalesce(nullif(current_setting('application_name'), ''), 'kami') "
            "|| '-sweeper', 63), false)"
        )
