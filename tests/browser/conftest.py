"""Headless Chromium (Debian's, never a downloaded one) driven by Playwright's sync API.

Playwright's sync API runs an asyncio event loop in the test thread, so Django's
"async-unsafe" guard would refuse the ORM calls the tests make; the tests are synchronous,
so the guard is switched off for this package.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.html_audit import watch_csp_violations

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 800},
}


@pytest.fixture(params=sorted(VIEWPORTS), ids=sorted(VIEWPORTS))
def viewport(request) -> str:
    """Run a test at a phone and at a desktop viewport."""
    return request.param


@pytest.fixture
def new_context(chromium_browser, request) -> Iterator[Callable]:
    """Factory for fresh, isolated browser contexts (separate cookie jars = separate
    browsers). Every page's JavaScript errors and Content-Security-Policy violations are
    collected and fail the test; ``context.csp_violations`` lists the latter as they come."""
    contexts = []
    page_errors: list[str] = []
    context_violations: list[list[str]] = []

    def make(viewport: str = "phone", locale: str = "en-US"):
        size = VIEWPORTS[viewport]
        context = chromium_browser.new_context(
            viewport=size,
            is_mobile=viewport == "phone",
            has_touch=viewport == "phone",
            device_scale_factor=1,
            locale=locale,  # Accept-Language and navigator.language
        )
        context.set_default_timeout(10_000)
        context.on("page", lambda page: page.on("pageerror", lambda e: page_errors.append(str(e))))
        context.csp_violations = watch_csp_violations(context)
        context_violations.append(context.csp_violations)
        contexts.append(context)
        return context

    yield make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                _save(page, f"{request.node.name}-FAILED-ctx{i}-page{j}")
    for context in contexts:
        context.close()
    assert not page_errors, f"JavaScript errors in the page: {page_errors}"
    violations = [v for found in context_violations for v in found]
    assert not violations, f"Content-Security-Policy violations: {violations}"


def _save(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"\[(.*?)\]", r"-\1", name)  # test_x[phone]-01-step -> test_x-phone-01-step
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    # A screenshot must never hide the real failure.
    with contextlib.suppress(Exception):
        page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def shot(request) -> Callable:
    """``shot(page, "step")`` saves ``var/test-artifacts/<test>-<step>.png`` (full page)."""

    def take(page, step: str) -> Path:
        return _save(page, f"{request.node.name}-{step}")

    return take


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def asgi_server(tmp_path, transactional_db):
    """``manage.py serve`` (what ``make run`` starts: uvicorn, HTTP and WebSockets, in-process
    tasks, no Redis) on the test database, for journeys that need the order page's socket;
    ``live_server`` speaks HTTP only. ``.url`` is its address, ``.log_path`` its output."""
    from tests.serving import serving

    log_path = tmp_path / "serve.log"
    with serving(log_path, WEB_THREADS="2") as process:
        process.url = f"http://127.0.0.1:{process.port}"  # type: ignore[attr-defined]
        process.log_path = log_path  # type: ignore[attr-defined]
        yield process
