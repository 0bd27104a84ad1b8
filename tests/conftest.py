"""Test-suite plumbing: skip-or-fail for missing servers, and shared fixtures."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"


def _missing() -> dict[str, bool]:
    return {
        "postgres": not settings.POSTGRES_AVAILABLE,
        "redis": not settings.REDIS_AVAILABLE,
        "browser": not shutil.which(CHROMIUM),
    }


@pytest.fixture(autouse=True)
def _require_real_parts(request):
    """A test marked ``postgres``/``redis``/``browser`` needs that part: skipped loudly on a
    laptop without it, failed under ``CI=true``."""
    for marker, is_missing in _missing().items():
        if is_missing and request.node.get_closest_marker(marker):
            message = f"needs {marker}, which is not available on this machine"
            if IN_CI:
                pytest.fail(f"CI=true: {message}")
            pytest.skip(f"SKIPPED LOUDLY: {message}")


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(
            f"WARNING: {len(skipped)} test(s) SKIPPED because a server or browser is missing; "
            "CI fails on these.",
            red=True,
            bold=True,
        )


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit counters live in the cache (Redis): every test starts from zero.

    Only this suite's keys are deleted (by prefix): ``cache.clear()`` would FLUSHDB and wipe
    the Celery queue a real-worker test shares the Redis database with.
    """
    from django.core.cache import cache

    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()
    yield


@pytest.fixture
def webhook_secret() -> str:
    return settings.STRIPE_WEBHOOK_SECRET
