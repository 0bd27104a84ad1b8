"""Test-suite plumbing: skip-or-fail for missing servers, and shared fixtures."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"

# tests/sqlite/ runs on SQLite only, in the subprocess tests/test_sqlite_job.py starts with
# KAMI_SQLITE_JOB=1. Elsewhere it is not collected at all: a skip would fail CI.
collect_ignore = [] if os.environ.get("KAMI_SQLITE_JOB") else ["sqlite"]


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


def pytest_sessionstart(session):
    from tests.i18n.po import compile_stale_catalogues

    compile_stale_catalogues(settings.BASE_DIR / "locale")


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


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Chromium (Debian's, never a downloaded one) for the whole session, shared
    by every browser test whatever the order they run in. Checks for the binary itself: a
    session fixture is set up before ``_require_real_parts`` could skip the test.

    Playwright's sync API keeps an asyncio loop in this thread from now on, so Django's
    async-unsafe guard is switched off: the tests themselves are synchronous."""
    if not shutil.which(CHROMIUM):
        message = f"needs browser ({CHROMIUM}), which is not available on this machine"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def webhook_secret() -> str:
    return settings.STRIPE_WEBHOOK_SECRET
