"""Concurrent wrong logins (real threads, PostgreSQL, Redis): however many arrive at once, at
most ``AXES_FAILURE_LIMIT`` passwords are evaluated per username and per address — the
finding was a limit checked before the slow hash (39 of 60 token guesses against 20)."""

from __future__ import annotations

import threading
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Sum
from django.test import Client

from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

LIMIT = settings.AXES_FAILURE_LIMIT
THREADS = 3 * LIMIT
PASSWORD = "right-pass-9"


@pytest.fixture
def evaluated(monkeypatch) -> list[str]:
    """Every password evaluation, recorded; each one slow, as a real hash is (the tests use
    MD5 for speed, which would hide the window between the check and the count)."""
    seen: list[str] = []
    lock = threading.Lock()
    original = ModelBackend.authenticate

    def slow_authenticate(self, request, username=None, password=None, **kwargs):
        with lock:
            seen.append(username)
        time.sleep(0.05)
        return original(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", slow_authenticate)
    return seen


@pytest.fixture
def owner():
    return get_user_model().objects.create_superuser("owner", "o@example.com", PASSWORD)


def failures_recorded() -> int:
    return AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"] or 0


def test_concurrent_guesses_at_one_username_evaluate_at_most_the_limit(owner, evaluated):
    def guess(i: int) -> int:
        data = {"username": "owner", "password": f"wrong-{i}", "next": "/admin/"}
        return Client().post("/admin/login/", data, REMOTE_ADDR=f"203.0.113.{i + 1}").status_code

    results = run_concurrently(THREADS, guess)
    assert all(status in (200, 429) for status in results), results
    assert 0 < len(evaluated) <= LIMIT
    assert failures_recorded() == len(evaluated)  # every evaluated guess was counted
    # Keep guessing one at a time: exactly LIMIT are ever evaluated, then the lock holds.
    for i in range(LIMIT):
        guess(THREADS + i)
    assert len(evaluated) == LIMIT
    right = Client().post("/admin/login/", {"username": "owner", "password": PASSWORD})
    assert right.status_code == 429 and len(evaluated) == LIMIT


def test_concurrent_token_guesses_from_one_address_evaluate_at_most_the_limit(owner, evaluated):
    def guess(i: int) -> int:
        return (
            Client()
            .post(
                "/api/v1/auth/token",
                {"username": f"user{i}", "password": "wrong"},
                content_type="application/json",
                REMOTE_ADDR="198.51.100.99",
            )
            .status_code
        )

    results = run_concurrently(THREADS, guess)
    assert all(status in (401, 429) for status in results), results
    assert 0 < len(evaluated) <= LIMIT
    assert results.count(401) <= LIMIT
    assert failures_recorded() == len(evaluated)
