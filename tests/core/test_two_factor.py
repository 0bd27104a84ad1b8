"""Second factor for staff (core/two_factor.py, core/admin_site.py): enrolment with a QR code and
the secret, ten one-time recovery codes, a code at every admin login, and the owner made to
enrol when ``KAMI_REQUIRE_OWNER_2FA`` is on. Codes are real TOTP codes computed from the secret
the page shows, and every login goes through the real admin login form."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from base64 import b32decode
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from shop.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "right-pass-9"
SETUP = "/admin/two-factor/"
LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _no_otp_throttle(settings):
    """django-otp waits 1, 2, 4 … seconds after a wrong code; these tests try a wrong code and
    then a right one on purpose, and never wait."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def owner():
    return get_user_model().objects.create_superuser("owner", "o@example.com", PASSWORD)


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("support", "s@example.com", PASSWORD, is_staff=True)


def secret_key(secret: str) -> bytes:
    """The key behind the secret as the page shows it (base32 in groups, no padding)."""
    text = secret.replace(" ", "")
    return b32decode(text + "=" * (-len(text) % 8))


def code_for(secret: str, *, steps_ahead: int = 0) -> str:
    """The authenticator app's code for ``secret``, now or ``steps_ahead`` 30 s steps on."""
    totp = TOTP(secret_key(secret), step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def device_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def admin_login(client, username: str, code: str = "", password: str = PASSWORD, **extra):
    data = {"username": username, "password": password, "otp_token": code, "next": "/admin/"}
    return client.post(LOGIN, data, **extra)


def enrol(client) -> tuple[str, list[str]]:
    """Walk the enrolment page as a person would: read the secret, type the app's code."""
    page = client.get(SETUP)
    assert page.status_code == 200
    body = page.content.decode()
    secret = re.search(r'id="otp-secret">([A-Z2-7 ]+)<', body).group(1)
    done = client.post(SETUP, {"action": "confirm", "code": code_for(secret)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    return secret, codes


def test_enrolment_shows_a_qr_code_and_the_secret_then_ten_recovery_codes_once(client, staff):
    client.force_login(staff)
    page = client.get(SETUP)
    body = page.content.decode()
    assert "<svg" in body and 'class="otp-qr"' in body
    device = TOTPDevice.objects.get(user=staff)
    assert not device.confirmed
    secret = re.search(r'id="otp-secret">([A-Z2-7 ]+)<', body).group(1)
    assert secret_key(secret) == device.bin_key
    url = html.unescape(re.search(r'class="otp-url">([^<]+)<', body).group(1))
    assert url.startswith("otpauth://totp/Kami%3Asupport?") and "issuer=Kami" in url
    assert client.get(SETUP).content.decode().count(secret) == 1  # same device on reload

    wrong = client.post(SETUP, {"action": "confirm", "code": "000000"})
    assert "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    done = client.post(SETUP, {"action": "confirm", "code": code_for(secret)})
    assert "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(set(codes)) == 10
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    stored = StaticToken.objects.filter(device__user=staff).values_list("token", flat=True)
    assert sorted(stored) == sorted(codes)
    again = client.get(SETUP).content.decode()
    assert "Recovery codes left" in again and not any(c in again for c in codes)

    audited = AuditEntry.objects.filter(object_type="otp_totp.totpdevice", object_id=device.pk)
    assert any(e.changes.get("confirmed") == [False, True] for e in audited)
    assert {e.actor_name for e in audited} == {"support"}
    assert not any(secret.replace(" ", "") in str(e.changes) for e in audited)


def test_a_staff_login_with_a_second_factor_needs_the_code(staff):
    enrolling = Client()
    enrolling.force_login(staff)
    secret, _ = enrol(enrolling)

    client = Client()
    missing = admin_login(client, "support")
    assert missing.status_code == 200
    assert "This account uses two-factor authentication" in missing.content.decode()
    assert "_auth_user_id" not in client.session

    wrong = admin_login(client, "support", "123456")
    assert "That two-factor code is wrong" in wrong.content.decode()
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="support").failures_since_start == 1

    right = admin_login(client, "support", code_for(secret, steps_ahead=1))
    assert right.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_totp_code_works_only_once(staff):
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    code = device_code(device)
    first = Client()
    assert admin_login(first, "support", code).status_code == 302
    second = Client()
    replay = admin_login(second, "support", code)
    assert replay.status_code == 200 and "_auth_user_id" not in second.session


def test_a_recovery_code_works_once(staff):
    enrolling = Client()
    enrolling.force_login(staff)
    _, codes = enrol(enrolling)

    lost_phone = Client()
    assert admin_login(lost_phone, "support", codes[0].upper()).status_code == 302
    assert lost_phone.get("/admin/").status_code == 200
    assert StaticToken.objects.filter(device__user=staff).count() == 9

    again = Client()
    assert admin_login(again, "support", codes[0]).status_code == 200
    assert "_auth_user_id" not in again.session
    assert admin_login(again, "support", codes[1]).status_code == 302


def test_a_session_opened_without_the_code_is_not_an_admin_session(staff):
    TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    client = Client()
    promoter_login = client.post("/promoter/login", {"username": "support", "password": PASSWORD})
    assert promoter_login.status_code == 302  # the promoter pages have no second step
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    # Nor may it change the second factor: enrolment sends it to the login first.
    setup = client.get(SETUP)
    assert setup.status_code == 302 and setup["Location"].startswith(LOGIN)
    assert client.post(SETUP, {"action": "recovery_codes"}).status_code == 302
    assert not StaticDevice.objects.filter(user=staff).exists()


def test_staff_without_a_second_factor_log_in_with_the_password(client, staff, settings):
    settings.KAMI_REQUIRE_OWNER_2FA = True  # required of the owner only
    assert admin_login(client, "support").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_an_owner_without_a_second_factor_is_sent_to_enrolment_first(client, owner, settings):
    settings.KAMI_REQUIRE_OWNER_2FA = True
    assert admin_login(client, "owner").status_code == 302
    for page in ("/admin/", "/admin/shop/product/", "/admin/auth/user/", "/admin/password_change/"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(f"{SETUP}?next=")
    assert "must use two-factor" in client.get(SETUP).content.decode()

    secret, codes = enrol(client)
    assert len(codes) == 10
    assert client.get("/admin/").status_code == 200  # this session was verified by enrolling

    later = Client()
    assert admin_login(later, "owner").status_code == 200  # the code is now required
    assert admin_login(later, "owner", code_for(secret, steps_ahead=1)).status_code == 302
    assert later.get("/admin/shop/product/").status_code == 200


def test_an_owner_in_a_group_is_held_to_it_too(client, settings):
    from django.contrib.auth.models import Group

    settings.KAMI_REQUIRE_OWNER_2FA = True
    user = get_user_model().objects.create_user("boss", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="owner")[0])
    admin_login(client, "boss")
    assert client.get("/admin/")["Location"].startswith(SETUP)


def test_the_owner_can_log_out_without_enrolling(client, owner, settings):
    settings.KAMI_REQUIRE_OWNER_2FA = True
    admin_login(client, "owner")
    assert client.post("/admin/logout/").status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_requirement_is_off_in_development_by_default(client, owner, settings):
    assert settings.KAMI_REQUIRE_OWNER_2FA is False  # the suite runs with DEBUG on
    admin_login(client, "owner")
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(("debug", "required"), [("0", "True"), ("1", "False")])
def test_the_requirement_follows_debug_unless_set(debug, required):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAMI_REQUIRE", "DJANGO_"))}
    env |= {
        "DEBUG": debug,
        "SECRET_KEY": "x" * 50,
        "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": "sqlite:///:memory:",
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v0",
            "-c",
            "from django.conf import settings;print(settings.KAMI_REQUIRE_OWNER_2FA)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == required


def test_new_recovery_codes_replace_the_old_ones(client, staff):
    client.force_login(staff)
    _, old = enrol(client)
    response = client.post(SETUP, {"action": "recovery_codes"})
    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert admin_login(Client(), "support", old[0]).status_code == 200
    assert admin_login(Client(), "support", new[0]).status_code == 302


def test_a_new_authenticator_replaces_the_old_one_only_once_confirmed(client, staff):
    client.force_login(staff)
    old_secret, _ = enrol(client)
    page = client.get(f"{SETUP}?replace=1").content.decode()
    new_secret = re.search(r'id="otp-secret">([A-Z2-7 ]+)<', page).group(1)
    assert new_secret != old_secret
    assert TOTPDevice.objects.filter(user=staff).count() == 2
    assert admin_login(Client(), "support", code_for(old_secret, steps_ahead=1)).status_code == 302
    client.post(SETUP, {"action": "confirm", "code": code_for(new_secret)})
    (device,) = TOTPDevice.objects.filter(user=staff)
    assert device.confirmed and device.bin_key == secret_key(new_secret)
    login = admin_login(Client(), "support", code_for(new_secret, steps_ahead=1))
    assert login.status_code == 302


def test_only_the_owner_sees_and_resets_second_factors(owner, staff):
    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    other = get_user_model().objects.create_user("clerk", password=PASSWORD, is_staff=True)
    other.user_permissions.add(*Permission.objects.filter(content_type__app_label="otp_totp"))
    clerk = Client()
    clerk.force_login(other)
    assert clerk.get("/admin/otp_totp/totpdevice/").status_code == 403
    delete = f"/admin/otp_totp/totpdevice/{device.pk}/delete/"
    assert clerk.post(delete, {"post": "yes"}).status_code == 403

    boss = Client()
    boss.force_login(owner)
    listing = boss.get("/admin/otp_totp/totpdevice/")
    assert listing.status_code == 200 and device.key not in listing.content.decode()
    detail = boss.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in detail
    boss.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert admin_login(Client(), "support").status_code == 302  # reset: password alone again
