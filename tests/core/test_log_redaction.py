"""The log redaction filter, the secret scopes and the console email (``core.log_redaction``).

The whole-purchase test (``tests/orders/test_no_secrets_in_logs.py``) shows nothing leaks on
the real paths; these pin each rule, including the ones no path exercises today.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from core.console_email import EmailBackend as ConsoleEmailBackend
from core.log_redaction import (
    REDACTED,
    RedactSecretsFilter,
    known_secrets,
    redact_text,
    register_secret,
    secret_scope,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "CARD-KEY-7H3-S3CR3T"


@pytest.fixture
def log():
    """A logger whose one handler is built like ``LOGGING``'s console handler; yields
    ``(logger, stream)``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_every_configured_handler_carries_the_filter_and_django_adds_none_of_its_own():
    configured = settings.LOGGING["handlers"]
    assert configured and all("redact_secrets" in h.get("filters", []) for h in configured.values())
    console = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    assert any(isinstance(f, RedactSecretsFilter) for f in console.filters)
    # Django's defaults put an unfiltered console handler on "django" and "django.server".
    for name in ("django", "django.server", "django.request", "django.db.backends"):
        assert logging.getLogger(name).handlers == [], name


def test_values_under_secret_names_are_redacted_in_dict_and_tuple_arguments(log):
    logger, stream = log
    logger.info("login %(username)s %(password)s", {"username": "ann", "password": "hunter2!"})
    logger.info("payload %s", {"query_password": "pw-1234", "nested": {"token": "t0k3n-x"}})
    out = stream.getvalue()
    assert "ann" in out and "hunter2!" not in out and "pw-1234" not in out and "t0k3n-x" not in out
    assert out.count(REDACTED) == 3


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ('"GET /api/v1/orders/K1?email=a%40b.c&query_password=open+sesame HTTP/1.1" 200', "sesame"),
        ('"GET /api/v1/orders/K1?email=ann@example.com HTTP/1.1" 200', "ann@example.com"),
        ("POST body password=hunter2&username=ann", "hunter2"),
        ("headers {'Authorization': 'Bearer abc.def.ghi'}", "abc.def.ghi"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("sent with Bearer kami_0123456789abcdefghijklmnopqrstuv", "0123456789abcdefghij"),
        ("token kami_0123456789abcdefghijklmnopqrstuv in text", "0123456789abcdefghij"),
        ('{"Stripe-Signature": "t=1700000000,v1=' + "ab" * 32 + '"}', "ab" * 32),
        ("Stripe-Signature: t=1700000000,v1=" + "cd" * 32 + ",v0=" + "ef" * 32, "cd" * 32),
        ("configured sk_live_51HabcdefGHIJKL and whsec_abcdefghijkl", "51HabcdefGHIJKL"),
        ("configured sk_live_51HabcdefGHIJKL and whsec_abcdefghijkl", "whsec_abcdefghijkl"),
        ('{"password": "with \\"quotes\\" inside"}', "quotes"),
    ],
)
def test_secret_shapes_and_pairs_are_redacted_in_message_text(log, message, secret):
    logger, stream = log
    logger.warning("%s", message)
    out = stream.getvalue()
    assert secret not in out and REDACTED in out


def test_ordinary_messages_pass_unchanged(log):
    logger, stream = log
    line = "rate limit token-failures: the cache is unreachable (timeout); order K26 paid 9.90"
    logger.warning(line)
    logger.info("GET /api/v1/products?page=2 200")
    assert stream.getvalue() == f"WARNING {line}\nINFO GET /api/v1/products?page=2 200\n"


def test_a_registered_secret_is_redacted_in_every_form_until_its_scope_ends(log):
    logger, stream = log
    special = "KEY\"quote'&<b>-2"
    with secret_scope():
        register_secret(KEY)
        register_secret(special)
        logger.debug("SELECT %s", f"'{KEY}'")
        logger.info("<li>%s</li> %s", "KEY&quot;quote&#x27;&amp;&lt;b&gt;-2", '"KEY\\"quote')
        logger.info("json %s", '{"k": "KEY\\"quote\'&<b>-2"}')
        try:
            raise ValueError(f"bad key {KEY}")
        except ValueError:
            logger.exception("delivery failed")
    assert KEY not in known_secrets()
    logger.info("after %s", KEY)  # out of scope: nothing registered it any more
    out = stream.getvalue()
    before, after = out.split("after ")
    assert KEY not in before and "quote&#x27;" not in before and "KEY\\\"quote'" not in before
    assert "ValueError: bad key ***" in before
    assert after.strip() == KEY


def test_a_scope_is_per_thread_and_short_values_are_not_registered():
    register_secret("abc")
    assert "abc" not in known_secrets()
    seen: list[tuple[str, ...]] = []
    with secret_scope():
        register_secret(KEY)
        thread = threading.Thread(target=lambda: seen.append(known_secrets()))
        thread.start()
        thread.join()
        assert KEY in known_secrets()
    assert KEY not in seen[0]


def test_configured_secrets_are_redacted_everywhere(log):
    logger, stream = log
    logger.info("key=%s secret=%s", settings.CARDKEY_ENCRYPTION_KEY, settings.SECRET_KEY)
    out = stream.getvalue()
    assert settings.SECRET_KEY not in out and settings.CARDKEY_ENCRYPTION_KEY not in out


def test_the_filter_rewrites_the_record_so_later_handlers_see_it_redacted():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("password=hunter2",), None)
    assert RedactSecretsFilter().filter(record) is True
    assert record.getMessage() == f"password={REDACTED}"
    assert RedactSecretsFilter().filter(record) is True  # idempotent
    assert record.getMessage() == f"password={REDACTED}"


def test_a_record_with_bad_arguments_is_left_to_logging():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("one",), None)
    assert RedactSecretsFilter().filter(record) is True
    assert record.msg == "%s %s"


def test_celery_worker_handlers_get_the_filter():
    """A worker replaces the root handlers (``worker_hijack_root_logger``); Kami's receiver of
    ``after_setup_logger`` puts the filter on the new ones."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    import shop.celery  # noqa: F401 - connects the receivers

    for signal in (after_setup_logger, after_setup_task_logger):
        logger = logging.Logger(f"worker-{signal.name}")
        logger.addHandler(logging.StreamHandler(io.StringIO()))
        signal.send(sender=None, logger=logger, loglevel=logging.INFO, logfile=None)
        assert any(isinstance(f, RedactSecretsFilter) for f in logger.handlers[0].filters)


def test_a_celery_task_is_its_own_secret_scope():
    from celery.signals import task_postrun, task_prerun

    import shop.celery  # noqa: F401

    task_prerun.send(sender=None, task_id="t-1", task=None)
    register_secret(KEY)
    assert KEY in known_secrets()
    task_postrun.send(sender=None, task_id="t-1", task=None)
    assert KEY not in known_secrets()


def _delivery_email() -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject="Your key — order K26",  # non-ASCII: Django encodes the header
        body=f"Your keys:\n  {KEY}\n" + "x" * 1200,  # a line over 998: quoted-printable
        from_email="shop@example.com",
        to=["buyer@example.com"],
    )
    message.attach_alternative(f"<ol><li><code>{KEY}</code></li></ol>", "text/html")
    return message


def test_the_console_email_is_readable_and_has_the_request_keys_masked():
    stream = io.StringIO()
    with secret_scope():
        register_secret(KEY)
        ConsoleEmailBackend(stream=stream).send_messages([_delivery_email()])
    out = stream.getvalue()
    assert KEY not in out
    assert "Subject: Your key — order K26" in out and "To: buyer@example.com" in out
    assert "[text/plain]\nYour keys:\n  ***" in out and "<li><code>***</code></li>" in out


def test_the_default_email_url_uses_the_redacting_console_backend(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.EMAIL_BACKEND)",
        ],
        cwd=ROOT,
        env=env
        | {
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "DEBUG": "1",
            "KAMI_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "sqlite:///:memory:",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "core.console_email.EmailBackend"


def test_redact_text_leaves_the_structure_of_a_url_alone():
    url = "/api/v1/orders/K1?x=1&query_password=pw&email=a%40b.c#top"
    assert (
        redact_text(url) == f"/api/v1/orders/K1?x=1&query_password={REDACTED}&email={REDACTED}#top"
    )


@pytest.mark.django_db
def test_a_request_is_its_own_secret_scope(client):
    """What a request registered (here the query password of a lookup) is forgotten when it
    ends: a thread serving many requests keeps nobody's secrets."""
    response = client.get("/api/v1/orders/K000NOPE", {"query_password": "Zebra-Crossing-1234"})
    assert response.status_code == 404
    assert "Zebra-Crossing-1234" not in known_secrets()


def test_a_checkout_request_does_not_show_its_query_password_in_its_repr():
    from orders.services import CheckoutRequest

    req = CheckoutRequest(product="p", quantity=1, email="a@b.c", query_password="Zebra-5678")
    assert "Zebra-5678" not in repr(req)
