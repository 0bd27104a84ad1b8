"""``manage.py check --deploy`` is clean for a production configuration behind TLS, and that
configuration really redirects to HTTPS, sends HSTS and keeps Stripe Checkout reachable
under the Content-Security-Policy (issue "Owner security and hardening").

Each test runs Django in a subprocess with a production environment built from nothing (no
test settings, no development marker), as a server would start it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """What ``.env.example`` asks for, behind a TLS-terminating proxy."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KAMI_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DEBUG": "0",
        "SECRET_KEY": "pr0duction-" + "k3y-" * 12,
        "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "CARDKEY_FINGERPRINT_KEY": "fingerprint-" + "s3cret-" * 6,
        "ALLOWED_HOSTS": "shop.example.com",
        "SITE_URL": "https://shop.example.com",
        "TRUST_X_FORWARDED_FOR": "1",
        "DATABASE_URL": "sqlite:///:memory:",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "EMAIL_URL": "smtp+tls://user:password@smtp.example.com:587",
        "STRIPE_SECRET_KEY": "sk_test_kami_deploy_check",
        "STRIPE_WEBHOOK_SECRET": "whsec_kami_deploy_check",
    }


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_for_production_behind_tls(production_env):
    result = _manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    print(result.stdout, result.stderr)  # the record for the closing note
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_still_fails_a_plain_http_production(production_env):
    """The checks are live, not silenced: without TLS the same command fails."""
    production_env["SITE_URL"] = "http://shop.example.com"
    result = _manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr + result.stdout, check


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="shop.example.com")
plain = client.get("/api/v1/openapi.json")
tls = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
probe = client.get("/healthz")
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "hsts": tls.headers.get("Strict-Transport-Security"),
    "healthz_over_http": probe.status_code,
    "form_action": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"],
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
}))
"""


def _probe(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_sends_hsts(production_env):
    seen = _probe(production_env)
    assert seen["plain_status"] == 301
    assert seen["plain_location"] == "https://shop.example.com/api/v1/openapi.json"
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert seen["healthz_over_http"] == 200  # the app server's own probes stay plain HTTP
    assert seen["session_cookie_secure"] and seen["csrf_cookie_secure"]


def test_hsts_and_redirect_can_be_left_to_the_proxy(production_env):
    production_env |= {"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"}
    seen = _probe(production_env)
    assert seen["plain_status"] == 200 and seen["hsts"] is None


def test_form_action_allows_stripe_checkout_only_with_stripe(production_env):
    """The checkout form posts to the shop, which redirects to Stripe Checkout; Chromium applies
    ``form-action`` to that redirect (the product page would refuse to leave otherwise)."""
    assert _probe(production_env)["form_action"] == ["'self'", "https://checkout.stripe.com"]
    del production_env["STRIPE_SECRET_KEY"]
    assert _probe(production_env)["form_action"] == ["'self'"]
