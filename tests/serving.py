"""``manage.py serve`` (what ``make run`` starts) as a real subprocess on the test database,
for the tests that talk to it over HTTP: started, waited for, and always stopped."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from shop.processes import database_url

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@contextmanager
def serving(log_path: Path, *, database_query: str = "", **env: str) -> Iterator[subprocess.Popen]:
    """``manage.py serve`` on a free port (``process.port``), eager tasks and no Redis, its
    output in ``log_path``; yields once it answers, stops it (SIGTERM, then SIGKILL) after.
    ``database_query`` is appended to the test database's URL (e.g. an application_name)."""
    port = free_port()
    url = database_url(connection.settings_dict) + (f"?{database_query}" if database_query else "")
    full_env = (
        os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "shop.settings_test",
            "DATABASE_URL": url,
            "REDIS_URL": "",  # in-process tasks and a per-process cache: Redis is left alone
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
        | env
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.port = port  # type: ignore[attr-defined]
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, f"serve exited: {log_path.read_text()}"
                try:
                    if http_get(port, "/api/v1/products") == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"serve never answered: {log_path.read_text()}"
                time.sleep(0.2)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
