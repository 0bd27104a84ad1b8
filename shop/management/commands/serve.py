"""``manage.py serve``: what ``make run`` starts — the web server plus a task worker.

The web server is uvicorn running ``shop.server``'s ASGI application: HTTP on Django's WSGI
handler in a fixed pool of ``WEB_THREADS`` threads (default 8), so the process holds at most
that many database connections however many buyers are connected; the rest wait in the pool's
queue. With ``REDIS_URL`` a real Celery worker with an embedded beat runs beside the web server.
Without it tasks already run in-process after commit (in the request's thread), and a small
thread here fires the periodic ones (expire unpaid orders, sweep the payment inbox, retry
backorders) on the same schedule beat would. Ctrl-C (or SIGTERM) stops everything.

Start-up order matters. The development shop (``DEBUG``) is refused on a non-loopback
``HOST`` unless told twice (``shop.devmode``). Then the port is bound, and only then is the
worker started, so a port already in use stops ``serve`` before any worker exists; the worker
also gets SIGTERM from the kernel if ``serve`` dies without cleaning up (``kill -9``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from shop.devmode import exposure_refusal, exposure_warning
from shop.processes import celery_worker_command, die_with_parent
from shop.server import build_application, listening_socket, uvicorn_server, web_threads

logger = logging.getLogger(__name__)


def _periodic_loop(stop: threading.Event) -> None:
    from importlib import import_module

    schedule = settings.CELERY_BEAT_SCHEDULE.values()
    tasks = []
    for entry in schedule:
        module, _, name = entry["task"].rpartition(".")
        tasks.append((getattr(import_module(module), name), float(entry["schedule"])))
    elapsed = 0.0
    tick = min(interval for _, interval in tasks)
    while not stop.wait(tick):
        elapsed += tick
        close_old_connections()  # CONN_MAX_AGE and health checks apply to this thread too
        for task, interval in tasks:
            if elapsed % interval < tick:
                try:
                    task()
                except Exception:  # keep the loop alive for the other jobs
                    logger.exception("periodic task %s failed", task.name)
        close_old_connections()


def _interrupt(signum, frame) -> None:
    """SIGTERM, once uvicorn has shut down gracefully and re-raised it: stop like Ctrl-C."""
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the shop, admin and API with a task worker (HOST/PORT from the environment)."

    def handle(self, *args, **options) -> None:
        host = os.environ.get("HOST", "127.0.0.1")
        try:
            port = int(os.environ.get("PORT", "8000"))
            threads = web_threads()
        except ValueError as exc:
            raise CommandError(f"PORT/WEB_THREADS: {exc}") from None
        if settings.DEBUG:
            refusal = exposure_refusal(host)
            if refusal is not None:
                raise CommandError(refusal)
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Is another Kami "
                "(make run) already running there? Stop it, or choose another port: PORT=8001."
            ) from None
        server = uvicorn_server(build_application(threads), host=host, port=port)
        worker = None
        stop = threading.Event()
        previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
        try:
            if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
                worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                    celery_worker_command(
                        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                        pool="threads",
                        concurrency=4,
                        with_beat=True,
                    ),
                    preexec_fn=die_with_parent(),  # safe here: no other thread runs yet
                )
                self.stdout.write("Celery worker + beat started (Redis).")
            else:
                threading.Thread(target=_periodic_loop, args=(stop,), daemon=True).start()
                self.stdout.write("No REDIS_URL: tasks run in-process after commit.")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Kami at http://{host}:{port}/  ·  admin: /admin/  ·  API: /api/v1/docs"
                )
            )
            if settings.DEBUG:
                self.stdout.write(
                    "Demo logins: admin/admin (owner), promoter/promoter, promoter2/promoter2"
                )
                warning = exposure_warning(host)
                if warning:
                    self.stdout.write(self.style.WARNING(warning))
            self.stdout.write(f"uvicorn, {threads} request threads (WEB_THREADS). Ctrl-C stops.")
            self.stdout.flush()
            server.run(sockets=[sock])  # returns (or raises KeyboardInterrupt) when shut down
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
            stop.set()
            sock.close()
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
