"""Keys and passwords never reach a log (issue "Owner security and hardening").

A whole purchase runs with every logger at DEBUG and every SQL statement logged: API checkout
with a query password, a signed Stripe-format webhook, delivery, the delivery email, lookups
by email and by query password (GET and POST forms), the lookup page and the order page, the
sandbox Pay page for a second order, and a promoter's token login and Bearer call. The
delivery email goes to the console backend ``EMAIL_URL=consolemail://`` (the default) selects,
writing into the same stream as the logs. Everything is captured — ``caplog``, a handler built like
the configured console handler (its formatter and filters) writing to a ``StringIO``, and the
process's stdout/stderr (``capfd``) — and searched for every key of the pool (plain,
HTML-escaped and JSON-escaped), the query password, the account password, the token, the
``Stripe-Signature`` HMAC and the configured secrets.

``test_the_capture_sees_what_django_console_email_prints`` is the control: the same journey
with Django's own console backend puts the keys in the captured output, so the capture
is not blind.
"""

from __future__ import annotations

import html
import http.client
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import django.core.mail.backends.console
import pytest
from django.conf import settings
from django.db import connection

import core.console_email
from cardpool.services import keys_import
from orders.models import Order, PaymentEvent
from orders.payments.stripe_events import encode, sign_payload
from tests.commissions.factories import PromoterFactory
from tests.factories import ProductFactory
from tests.serving import serving
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

LOGGERS = (
    "",
    "django",
    "django.db.backends",
    "django.request",
    "django.server",
    "django.security",
    "celery",
    "celery.app.trace",
    "celery.task",
    "kombu",
    "core",
    "shop",
    "orders",
    "cardpool",
    "commissions",
    "riskrules",
    "analytics",
)
QUERY_PASSWORD = "Sesame-open-4711"
ACCOUNT_PASSWORD = "pw-Secret-123"  # tests.commissions.factories.UserFactory's

LOG_STREAM = io.StringIO()


class _IntoTheLog:
    """Mixin: a console email backend writing into the captured log stream."""

    def __init__(self, *args, **kwargs):
        kwargs["stream"] = LOG_STREAM
        super().__init__(*args, **kwargs)


class KamiConsoleEmail(_IntoTheLog, core.console_email.EmailBackend):
    """What ``EMAIL_URL=consolemail://``, the default, selects (``tests/core/
    test_log_redaction.py::test_the_default_email_url_uses_the_redacting_console_backend``)."""


class DjangoConsoleEmail(_IntoTheLog, django.core.mail.backends.console.EmailBackend):
    """What it selected before: Django's own, for the control test."""


@dataclass
class Captured:
    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture
    handler_stream: io.StringIO
    secrets: dict[str, str] = field(default_factory=dict)
    fd_output: list[str] = field(default_factory=list)  # readouterr() hands each byte once

    def text(self) -> str:
        self.fd_output += self.capfd.readouterr()
        return "\n".join(
            [
                self.caplog.text,
                "\n".join(r.getMessage() for r in self.caplog.records),
                self.handler_stream.getvalue(),
                LOG_STREAM.getvalue(),
                *self.fd_output,
            ]
        )

    def leaks(self) -> dict[str, int]:
        text = self.text()
        found = {}
        for name, secret in self.secrets.items():
            for form in {secret, html.escape(secret), json.dumps(secret)[1:-1]}:
                if form in text:
                    found[name] = text.count(form)
        return found


def configured_console_handler() -> logging.Handler:
    """The root handler ``LOGGING`` configured (pytest adds its own beside it)."""
    return next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)


@pytest.fixture
def everything_logged(caplog, capfd) -> Iterator[Captured]:
    LOG_STREAM.seek(0)
    LOG_STREAM.truncate()
    console = configured_console_handler()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    connection.force_debug_cursor = True  # SQL is logged although the test runner's DEBUG is off
    try:
        yield Captured(caplog=caplog, capfd=capfd, handler_stream=stream)
    finally:
        connection.force_debug_cursor = False
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _purchase(client, captured: Captured) -> dict:
    """The whole journey; returns what the buyer saw (to prove the keys were delivered)."""
    product = ProductFactory(slug="logged", price=1500)
    plain = [f"LOGKEY-{i}-{uuid.uuid4().hex[:12]}" for i in range(5)]
    special = f"KEY\"quote'&<b>-{uuid.uuid4().hex[:8]}"
    keys_import(product=product, text="\n".join([special, *plain]))
    captured.secrets |= {f"key {i}": key for i, key in enumerate([special, *plain])}
    captured.secrets |= {
        "query password": QUERY_PASSWORD,
        "account password": ACCOUNT_PASSWORD,
        "webhook secret": settings.STRIPE_WEBHOOK_SECRET,
        "SECRET_KEY": settings.SECRET_KEY,
        **{
            f"encryption key {i}": key.strip()
            for i, key in enumerate(settings.CARDKEY_ENCRYPTION_KEY.split(","))
        },
    }
    promoter = PromoterFactory()

    # A promoter logs in for a token and uses it.
    response = client.post(
        "/api/v1/auth/token",
        {"username": promoter.user.username, "password": ACCOUNT_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    captured.secrets["token"] = token
    me = client.get("/api/v1/promoter/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 200, me.content
    wrong = client.get("/api/v1/promoter/me", HTTP_AUTHORIZATION=f"Bearer {token}x")
    assert wrong.status_code == 401

    # API checkout, paid by a signed Stripe-format webhook, delivered, emailed.
    response = client.post(
        "/api/v1/orders",
        {
            "product": "logged",
            "quantity": 2,
            "email": "buyer@example.com",
            "query_password": QUERY_PASSWORD,
            "ref": promoter.code,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    order_no = response.json()["order_no"]
    order = Order.objects.get(order_no=order_no)
    assert post_event(client, completed_event(order)).status_code == 200
    signature = PaymentEvent.objects.get().headers["Stripe-Signature"]
    captured.secrets["Stripe-Signature HMAC"] = signature.split("v1=")[1]

    # Lookups: GET with each credential, POST, a wrong password, the page form, the order page.
    seen = client.get(f"/api/v1/orders/{order_no}", {"email": "buyer@example.com"}).json()
    by_password = client.get(f"/api/v1/orders/{order_no}", {"query_password": QUERY_PASSWORD})
    assert by_password.status_code == 200 and by_password.json()["keys"] == seen["keys"]
    posted = client.post(
        f"/api/v1/orders/{order_no}/lookup",
        {"query_password": QUERY_PASSWORD},
        content_type="application/json",
    )
    assert posted.status_code == 200
    assert (
        client.get(
            f"/api/v1/orders/{order_no}", {"query_password": QUERY_PASSWORD + "x"}
        ).status_code
        == 404
    )
    page = client.post("/lookup", {"order_no": order_no, "email_or_password": QUERY_PASSWORD})
    assert page.status_code == 302
    order_page = client.get(f"/o/{order_no}")
    assert all(key in order_page.content.decode() for key in seen["keys"][1:])

    # A second order paid on the sandbox Pay page.
    response = client.post(
        "/api/v1/orders",
        {"product": "logged", "quantity": 1, "email": "other@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 201
    second = response.json()["order_no"]
    assert client.post(f"/pay/sandbox/{second}").status_code == 302
    assert Order.objects.get(order_no=second).status == "delivered"
    return {"order_no": order_no, "keys": seen["keys"], "status": seen["status"]}


def test_a_whole_purchase_at_debug_logs_no_key_password_or_token(
    client, settings, everything_logged
):
    settings.EMAIL_BACKEND = f"{__name__}.KamiConsoleEmail"
    seen = _purchase(client, everything_logged)

    assert seen["status"] == "delivered" and len(seen["keys"]) == 2
    text = everything_logged.text()
    # The capture did see the journey: its SQL, the webhook's row.
    assert 'UPDATE "orders_delivery"' in text and '"orders_paymentevent"' in text
    assert everything_logged.leaks() == {}
    # The delivery email was written out, readable, its keys masked.
    assert f"order {seen['order_no']}" in text and "<li><code" in text and "***" in text


def test_the_capture_sees_what_django_console_email_prints(client, settings, everything_logged):
    settings.EMAIL_BACKEND = f"{__name__}.DjangoConsoleEmail"
    seen = _purchase(client, everything_logged)

    leaks = everything_logged.leaks()
    assert seen["keys"][0] in everything_logged.text()
    assert {name for name in leaks if name.startswith("key ")}  # the control fails as it should


def _http(port: int, method: str, path: str, body: bytes | None = None, **headers: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_manage_py_serve_at_debug_prints_no_key_or_password(tmp_path):
    """``make run``'s server for real: uvicorn's access log, every logger at ``LOG_LEVEL=DEBUG``
    and the default ``EMAIL_URL=consolemail://`` all write to its output, which is searched."""
    product = ProductFactory(slug="served", price=700)
    keys = [f"SERVEDKEY-{i}-{uuid.uuid4().hex[:12]}" for i in range(3)]
    keys_import(product=product, text="\n".join(keys))
    log_path = tmp_path / "serve.log"
    with serving(
        log_path, LOG_LEVEL="DEBUG", EMAIL_URL="consolemail://", WEB_ACCESS_LOG="1"
    ) as process:
        port = process.port
        body = json.dumps(
            {
                "product": "served",
                "quantity": 2,
                "email": "buyer@example.com",
                "query_password": QUERY_PASSWORD,
            }
        ).encode()
        status, answer = _http(
            port, "POST", "/api/v1/orders", body, **{"Content-Type": "application/json"}
        )
        assert status == 201, answer
        order = Order.objects.get(order_no=json.loads(answer)["order_no"])
        payload = encode(completed_event(order))
        signature = sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
        status, answer = _http(
            port,
            "POST",
            "/payments/stripe/webhook",
            payload,
            **{"Content-Type": "application/json", "Stripe-Signature": signature},
        )
        assert status == 200, answer
        lookup = f"/api/v1/orders/{order.order_no}?query_password={QUERY_PASSWORD}"
        deadline = time.monotonic() + 20
        while True:
            status, answer = _http(port, "GET", lookup)
            assert status == 200, answer
            seen = json.loads(answer)
            if seen["status"] == "delivered" and "-" * 79 in log_path.read_text():
                break  # delivered, and the delivery email written out
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        status, _ = _http(port, "GET", f"/api/v1/orders/{order.order_no}?email=buyer@example.com")
        assert status == 200
    assert set(seen["keys"]) <= set(keys) and len(seen["keys"]) == 2
    output = log_path.read_text()
    assert f"GET /api/v1/orders/{order.order_no}?query_password=*** HTTP/1.1" in output
    assert f"order {order.order_no}" in output  # the console email, in the same output
    for secret in [*keys, QUERY_PASSWORD, signature.split("v1=")[1]]:
        assert secret not in output, secret
