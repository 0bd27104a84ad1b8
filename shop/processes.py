"""Starting Kami's own helper processes: a Celery worker, or a command on a given database.

``make run`` (``serve``), the benchmarks and the real-worker tests all start workers; one
function builds the command line so they cannot drift apart.
"""

from __future__ import annotations

import sys
from urllib.parse import quote


def database_url(settings_dict: dict) -> str:
    """A ``DATABASE_URL`` for a Django PostgreSQL connection's settings (e.g. a test DB)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


def celery_worker_command(
    *,
    queue: str,
    loglevel: str = "INFO",
    solo: bool = False,
    concurrency: int | None = None,
    with_beat: bool = False,
    notify: bool = True,
    pool: str | None = None,
    priority: bool | None = None,
) -> list[str]:
    """``python -m celery -A shop worker …`` consuming ``queue`` and, with ``notify``, its
    side-effect queue (``shop.celery.notify_queue``) too; with ``priority`` (default: as
    ``notify``, one worker doing everything) its priority queue (``orders.priority``).

    ``solo`` runs tasks in the worker's main process (tests and benchmarks: one process to
    watch and kill, and it skips the cluster chatter it does not need). ``pool``: Celery's pool
    type (``prefork``, ``threads``, …).
    """
    queues = [queue]
    if notify if priority is None else priority:
        queues.append(f"{queue}-priority")
    if notify:
        queues.append(f"{queue}-notify")
    command = [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", ",".join(queues)]
    command.append(f"--loglevel={loglevel}")
    if solo:
        command += ["--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    elif pool:
        command.append(f"--pool={pool}")
    if concurrency:
        command.append(f"--concurrency={concurrency}")
    if with_beat:
        command.append("-B")
    return command
