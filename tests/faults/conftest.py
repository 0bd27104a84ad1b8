"""Fault-test fixtures: servers of their own (skipped loudly without the binaries, failed
under CI=true, like every real part the suite needs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.faults.servers import OwnPostgres, OwnRedis, missing_servers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _require_servers() -> None:
    missing = missing_servers()
    if missing:
        message = f"needs {', '.join(missing)}, not available on this machine"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(f"SKIPPED LOUDLY: {message}")


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A per-test directory for the processes' logs and the mailbox (kept on failure)."""
    (tmp_path / "mail").mkdir()
    return tmp_path


@pytest.fixture
def queue_name() -> str:
    return f"kami-fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    if missing_servers():
        pytest.skip("SKIPPED LOUDLY: no PostgreSQL binaries")  # the autouse fixture says why
    server = OwnPostgres()
    server.init()
    try:
        yield server
    finally:
        server.close()
