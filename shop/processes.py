"""Starting Kami's own helper processes: a Celery worker, or a command on a given database.

``make run`` (``serve``), the benchmarks and the real-worker tests all start workers; one
function builds the command line so they cannot drift apart.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from urllib.parse import quote

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that makes the child receive SIGTERM when the
    process that started it dies, however it dies (``kill -9``, the OOM killer): a worker
    ``serve`` started must never keep running, and taking tasks, without it. Linux only
    (``prctl(PR_SET_PDEATHSIG)``); ``None`` elsewhere.

    libc is resolved here, in the parent: between fork and exec the child only makes the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: nobody to wait for
            os._exit(1)

    return set_parent_death_signal
