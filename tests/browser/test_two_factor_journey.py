"""The owner's second factor in a real browser: log in with the password, get sent to
enrolment, read the secret off the page, type the authenticator's code, see the recovery codes,
reach the admin; then log in again in a fresh browser with password and code."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "right-pass-9"


def _code(secret: str, *, steps_ahead: int = 0) -> str:
    text = secret.replace(" ", "")
    totp = TOTP(b32decode(text + "=" * (-len(text) % 8)), step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def _log_in(page, live_server, code: str = "") -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(PASSWORD)
    if code:
        page.get_by_label("Two-factor code").fill(code)
    page.get_by_role("button", name="Log in").click()


def test_owner_enrols_and_logs_in_with_a_code(live_server, new_context, shot, settings):
    settings.KAMI_REQUIRE_OWNER_2FA = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    get_user_model().objects.create_superuser("owner", "o@example.com", PASSWORD)

    page = new_context("desktop").new_page()
    _log_in(page, live_server)
    expect(page).to_have_url(re.compile(r"/admin/two-factor/\?next="))
    expect(page.locator("svg.otp-qr")).to_be_visible()
    expect(page.get_by_text("The shop owner must use two-factor authentication")).to_be_visible()
    shot(page, "01-enrol")
    secret = page.locator("#otp-secret").inner_text()
    page.get_by_label("Code from the app").fill(_code(secret))
    page.get_by_role("button", name="Confirm and show recovery codes").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    shot(page, "02-recovery-codes")
    page.get_by_role("link", name="I have saved them — continue").click()
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Products, keys, orders and promoters")).to_be_visible()

    fresh = new_context("phone").new_page()
    _log_in(fresh, live_server)  # the password alone is no longer enough
    expect(fresh.get_by_text("This account uses two-factor authentication")).to_be_visible()
    shot(fresh, "03-code-required")
    _log_in(fresh, live_server, _code(secret, steps_ahead=1))
    expect(fresh).to_have_url(f"{live_server.url}/admin/")
    shot(fresh, "04-admin")
