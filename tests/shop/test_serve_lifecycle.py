"""``manage.py serve`` (``make run``) never leaves its Celery worker behind: a port already in
use stops it before a worker starts, and a worker whose ``serve`` is killed outright (``kill -9``)
goes too (issue "Owner security and hardening", "make run on a port already in use leaves its
Celery worker running with no parent").

Each test gives the worker a queue name of its own, so its processes are found by command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def _processes_with(word: str) -> list[int]:
    """Pids of this machine's processes whose command line contains ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\x00")
        except OSError:
            continue
        if any(word.encode() in arg for arg in argv):
            found.append(int(entry.name))
    return found


def _wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def queue() -> str:
    name = f"kami-test-lifecycle-{uuid.uuid4().hex[:10]}"
    yield name
    _kill_all(_processes_with(name))  # whatever a failing test left behind


def _worker_env(queue: str) -> dict[str, str]:
    return {
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "KAMI_TASK_QUEUE": queue,
        "WEB_ACCESS_LOG": "0",
    }


def test_port_in_use_stops_serve_before_any_worker_starts(queue, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = (
            os.environ
            | {
                "DJANGO_SETTINGS_MODULE": "shop.settings_test",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
                "HOST": "127.0.0.1",
                "PORT": str(port),
            }
            | _worker_env(queue)
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "serve"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "already running" in result.stderr
    assert "Celery worker" not in result.stdout  # none was started
    assert _processes_with(queue) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_worker_dies_with_a_killed_serve(queue, tmp_path):
    with serving(tmp_path / "serve.log", **_worker_env(queue)) as process:
        assert _wait_for(lambda: len(_processes_with(queue)) > 0), "no worker started"
        workers = _processes_with(queue)
        process.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel is left
        process.wait()
        gone = _wait_for(lambda: not any(pid in _processes_with(queue) for pid in workers))
    assert gone, f"worker outlived serve: {workers}; {(tmp_path / 'serve.log').read_text()[-2000:]}"
