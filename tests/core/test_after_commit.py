"""Queueing after commit never fails the caller, and rests a broker that just failed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core import after_commit
from core.after_commit import enqueue_after_commit


class FakeTask:
    """Only the publish is replaced: what enqueue_after_commit does around it is real."""

    name = "tests.fake"

    def __init__(self, *, eager: bool, broker: str, fails: bool) -> None:
        self.app = SimpleNamespace(conf=SimpleNamespace(task_always_eager=eager, broker_url=broker))
        self.fails = fails
        self.calls: list[tuple] = []

    def apply_async(self, args=(), kwargs=None):
        self.calls.append(args)
        if self.fails:
            raise ConnectionRefusedError("Connection refused")


pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_brokers(monkeypatch):
    monkeypatch.setattr(after_commit, "_resting_until", {})


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run ``enqueue_after_commit`` as if its transaction had just committed."""

    def _enqueue(task, *args):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_after_commit(task, *args)

    return _enqueue


def test_a_refused_publish_is_logged_not_raised_and_rests_that_broker(commit, caplog):
    down = FakeTask(eager=False, broker="redis://down:1/0", fails=True)
    commit(down, 1)
    commit(down, 2)
    assert down.calls == [(1,)]  # the second did not wait on a broker that just failed
    assert "not queued" in caplog.text
    other = FakeTask(eager=False, broker="redis://up:2/0", fails=False)
    commit(other, 3)
    assert other.calls == [(3,)]  # another broker is not affected


def test_in_process_tasks_are_never_skipped(commit):
    eager = FakeTask(eager=True, broker="memory://", fails=True)
    commit(eager, 1)
    commit(eager, 2)
    assert eager.calls == [(1,), (2,)]
