"""Servers of the fault tests' own, to stop, kill and restart mid-run: a ``redis-server`` and
a PostgreSQL cluster (``initdb``/``pg_ctl``) on free ports in temporary directories — never the
machine's shared ones — and Kami's processes on them: gunicorn (the web, as in production) and
a Celery worker."""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shop.processes import celery_worker_command
from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_servers() -> list[str]:
    missing = [] if shutil.which("redis-server") else ["redis-server"]
    return missing + ([] if postgres_bin() else ["PostgreSQL's initdb/pg_ctl"])


class OwnRedis:
    """``redis-server`` without persistence: stopping or killing it loses what it held, as a
    crashed Redis without its append-only file does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="kami-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self.answers, timeout=10), "own redis-server did not start"

    def answers(self) -> bool:
        try:
            import redis

            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except Exception:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnPostgres:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) run as the ``postgres`` user
    when the tests run as root, since PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        assert bindir is not None
        self.bin = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="kami-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _pg_ctl(self, *args: str) -> list[str]:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40"
        )
        return [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30"] + [
            *args,
            "-o",
            options,
            "-l",
            str(self.log),
        ]

    def init(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust"]
            + ["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True,
            capture_output=True,
        )
        self.start()
        import psycopg2

        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE kami")
        connection.close()

    def start(self) -> None:
        subprocess.run(self._pg_ctl("start"), check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(self._pg_ctl("stop", "-m", "fast"), check=True, capture_output=True)

    def restart_command(self) -> list[str]:
        """``pg_ctl restart -m fast``: every session is terminated, the server is back in a
        fraction of a second."""
        return self._pg_ctl("restart", "-m", "fast")

    def url(self, database: str = "kami") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        connection = psycopg2.connect(self.url(), connect_timeout=3)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def close(self) -> None:
        subprocess.run(self._pg_ctl("stop", "-m", "immediate"), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def kami_env(
    *, database_url: str, redis_url: str, queue: str, mailbox: Path, **extra: str
) -> dict[str, str]:
    """The environment of a Kami process on these servers; its mail goes to ``mailbox``."""
    return (
        os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "shop.settings_test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "0" if redis_url else "1",
            "KAMI_TASK_QUEUE": queue,
            "KAMI_CACHE_PREFIX": queue,
            "EMAIL_BACKEND": "tests.faults.mailbox.FileMailbox",
            "KAMI_FAULT_MAILBOX": str(mailbox),
        }
        | extra
    )


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def kami_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """A solo Celery worker on ``KAMI_TASK_QUEUE`` and its notify queue, once it is ready."""
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            celery_worker_command(queue=env["KAMI_TASK_QUEUE"], solo=True),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_for(lambda: "ready." in log_path.read_text(), timeout=60), (
                log_path.read_text()
            )
            yield worker
        finally:
            _stop(worker)


@contextmanager
def kami_web(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """gunicorn as in production (one process, four threads); ``process.port``."""
    port = free_port()
    with open(log_path, "w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "shop.wsgi:application"]
            + ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
            + ["--timeout", "60", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        web.port = port  # type: ignore[attr-defined]
        try:
            assert wait_for(lambda: _answers(port), timeout=60), log_path.read_text()
            yield web
        finally:
            _stop(web)


def _answers(port: int) -> bool:
    try:
        return http_request(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post_json(port: int, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, body = http_request(
        port, "POST", path, json.dumps(data).encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(body or b"{}")
