"""Kami's production shape as subprocesses: gunicorn (sync workers), the Celery task worker
and, as in docker-compose.yml, a second worker for the side-effect ("notify") queue.

Every process gets its own session (so a Ctrl-C in the terminal reaches only the bench, which
then stops them in order) and asks the kernel for SIGTERM should the bench die without
cleaning up (``PR_SET_PDEATHSIG``), so nothing is left running either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import inspect
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

POOLS = ("prefork", "threads", "gevent", "solo")


@dataclass
class StackConfig:
    web_workers: int = 5
    pool: str = "threads"
    concurrency: int = 8
    # The side-effect queue (delivery emails, alerts) and its own worker, as in production
    # (docker-compose.yml "notifier"); None: the task worker consumes it too (make run, tests).
    mail_queue: str | None = None
    mail_pool: str = "threads"
    mail_concurrency: int = 4
    # The priority lane ("<task queue>-priority") and its own worker, as in production
    # (docker-compose.yml "priority-worker"); None: the task worker consumes it too.
    priority_queue: str | None = None
    priority_concurrency: int = 2

    def db_connections(self) -> int:
        """Most PostgreSQL connections the stack may hold (one per worker thread/process)."""
        task = 1 if self.pool == "solo" else self.concurrency
        mail = (1 if self.mail_pool == "solo" else self.mail_concurrency) if self.mail_queue else 0
        priority = self.priority_concurrency if self.priority_queue else 0
        return self.web_workers + task + mail + priority

    def describe(self) -> str:
        def worker(pool: str, concurrency: int) -> str:
            return f"--pool={pool}" + ("" if pool == "solo" else f" --concurrency={concurrency}")

        text = f"gunicorn -w {self.web_workers} (sync); "
        text += f"Celery {worker(self.pool, self.concurrency)}"
        if self.mail_queue:
            text += (
                f"; notify worker on '{self.mail_queue}' "
                f"{worker(self.mail_pool, self.mail_concurrency)}"
            )
        else:
            text += " (also consuming the notify queue)"
        if self.priority_queue:
            text += (
                f"; priority worker on '{self.priority_queue}' "
                f"{worker('threads', self.priority_concurrency)}"
            )
        return text


def bench_environment(*, postgres: str, redis: str, db_name: str, run: str) -> dict[str, str]:
    """The production-shape environment of one bench run (``make bench``, ``bench/priority.py``):
    a throw-away database ``db_name``, fresh secrets, queues and cache keys named for ``run``
    (so the clean-up can find them), real Celery workers, and the sandbox provider: checkout
    answers a local pay_url and calls no payment service; the bench then pays the way Stripe
    would, with a signed webhook."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": postgres,
        "KAMI_TEST_DB_NAME": db_name,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "STRIPE_WEBHOOK_SECRET": f"whsec_bench_{secrets.token_hex(16)}",
        "REDIS_URL": redis,
        "KAMI_TASK_QUEUE": f"kami-bench-{run}",
        "KAMI_CACHE_PREFIX": f"kami-bench-{run}",
        "KAMI_BENCH_RUN": run,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "TRUST_X_FORWARDED_FOR": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_PAYMENTS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stack:
    def __init__(self, *, root: Path, env: dict[str, str], config: StackConfig, logdir: Path):
        self.root, self.env, self.config, self.logdir = root, env, config, logdir
        self.port = free_port()
        self.env = env | {"SITE_URL": f"http://127.0.0.1:{self.port}", "PORT": str(self.port)}
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(
            command,
            cwd=self.root,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # started before the bench starts any thread
        )

    def start(self) -> None:
        cfg = self.config
        if cfg.pool not in POOLS or cfg.mail_pool not in POOLS:
            raise SystemExit(f"--pool and --mail-pool must be one of {', '.join(POOLS)}")
        if "gevent" in (cfg.pool, cfg.mail_pool) and importlib.util.find_spec("gevent") is None:
            raise SystemExit("--pool gevent needs gevent: .venv/bin/pip install -e '.[dev]'")
        from shop.processes import celery_worker_command

        self._spawn(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "shop.wsgi:application",
                "-w",
                str(cfg.web_workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--no-control-socket",  # the default socket path is shared by every gunicorn
                "--timeout",
                "30",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
        )
        queue = self.env["KAMI_TASK_QUEUE"]
        run_id = self.env["KAMI_BENCH_RUN"]
        self._spawn(
            "celery",
            _worker_command(
                celery_worker_command,
                queue=queue,
                pool=cfg.pool,
                concurrency=cfg.concurrency,
                notify=not cfg.mail_queue,
                priority=not cfg.priority_queue,
            )
            + ["-n", f"bench-{run_id}@%h"],  # unique: other workers may share this Redis
        )
        if cfg.priority_queue:
            self._spawn(
                "celery-priority",
                _worker_command(
                    celery_worker_command,
                    queue=cfg.priority_queue,
                    pool="threads",
                    concurrency=cfg.priority_concurrency,
                    notify=False,
                    priority=False,
                )
                + ["-n", f"bench-priority-{run_id}@%h"],
            )
        if cfg.mail_queue:
            self._spawn(
                "celery-notify",
                _worker_command(
                    celery_worker_command,
                    queue=cfg.mail_queue,
                    pool=cfg.mail_pool,
                    concurrency=cfg.mail_concurrency,
                    notify=False,
                )
                + ["-n", f"bench-notify-{run_id}@%h"],
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; its log:\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.logdir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                url = f"{self.base_url}/healthz"  # always http://127.0.0.1
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s")

    def pids(self) -> dict[str, list[int]]:
        """Each process and all its descendants (gunicorn master + workers, prefork pool)."""
        children = _children_map()
        out = {}
        for name, proc in self.procs.items():
            if proc.poll() is None:
                out[name] = _descendants(proc.pid, children)
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for log in self._logs:
            log.close()
        self._logs.clear()


def _worker_command(
    build, *, queue: str, pool: str, concurrency: int, notify: bool, priority: bool = True
) -> list:
    """``shop.processes.celery_worker_command`` for this pool; older versions of it took no
    ``pool``, ``notify`` or ``priority``, so those are passed only when it knows them."""
    known = inspect.signature(build).parameters
    kwargs: dict = {"queue": queue, "loglevel": "WARNING"}
    if pool == "solo":
        kwargs["solo"] = True
    else:
        kwargs["concurrency"] = concurrency
        if "pool" in known:
            kwargs["pool"] = pool
    if "notify" in known:
        kwargs["notify"] = notify
    if "priority" in known:
        kwargs["priority"] = priority
    command = build(**kwargs)
    if pool != "solo" and "pool" not in known:
        command.append(f"--pool={pool}")
    # No cluster chatter (other workers may share this Redis), as production's workers.
    return command + [f for f in ("--without-gossip", "--without-mingle") if f not in command]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # The session leader's group holds the gunicorn workers and the prefork children too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out
