"""Login lockout (core/lockout.py, django-axes): the admin login, the promoter login and the API
token login refuse a username or an address that failed too often, the right password too,
with a page (or JSON) that says so; the lock ends after the cool-off or when the owner lifts it.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import F
from django.test import Client

from shop.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]

ADMIN_LOGIN = "/admin/login/"
PROMOTER_LOGIN = "/promoter/login"
PASSWORD = "right-pass-9"
LIMIT = settings.AXES_FAILURE_LIMIT


@pytest.fixture
def owner():
    return get_user_model().objects.create_superuser("owner", "o@example.com", PASSWORD)


@pytest.fixture
def promoter_user():
    return get_user_model().objects.create_user("pro", "p@example.com", PASSWORD)


def login(client, url: str, username: str, password: str, ip: str = "198.51.100.7", **extra):
    data = {"username": username, "password": password, "next": "/admin/"}
    return client.post(url, data, REMOTE_ADDR=ip, **extra)


def token(client, username: str, password: str, ip: str = "198.51.100.7"):
    return client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_lockout_page(response) -> None:
    """A page for people: HTML, says what happened and when to retry; not a bare 403 text."""
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "<html" in body and "Too many failed logins" in body
    assert re.search(r"try again in about \d+\s+minute", body)
    assert 0 < int(response["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()


@pytest.mark.parametrize("url", [ADMIN_LOGIN, PROMOTER_LOGIN])
def test_forty_wrong_passwords_then_the_right_one_is_refused(client, owner, url):
    statuses = [login(client, url, "owner", f"wrong-{i}").status_code for i in range(40)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(statuses[LIMIT - 1 :]) == {429}  # locked from the failure that hit the limit
    response = login(client, url, "owner", PASSWORD)
    assert_lockout_page(response)
    assert not logged_in(client)
    # Refused attempts were not evaluated, so they did not count: exactly LIMIT failures.
    assert sum(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == LIMIT


def test_a_right_login_under_the_limit_works(client, owner):
    for i in range(LIMIT - 1):
        login(client, ADMIN_LOGIN, "owner", f"wrong-{i}")
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD).status_code == 302
    assert logged_in(client)


def test_guesses_spread_over_addresses_lock_the_username(client, owner):
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, "owner", "wrong", ip=f"203.0.113.{i + 1}")
    assert_lockout_page(login(client, ADMIN_LOGIN, "owner", PASSWORD, ip="192.0.2.1"))
    assert not logged_in(client)


def test_one_address_trying_many_usernames_is_locked(client, owner):
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, f"someone{i}", "wrong")
    assert_lockout_page(login(client, ADMIN_LOGIN, "owner", PASSWORD))
    assert not logged_in(client)
    # The owner, from another address, is not locked out by it.
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD, ip="192.0.2.1").status_code == 302


def test_an_ipv6_client_is_counted_by_its_slash_64(client, owner):
    for i in range(LIMIT):
        login(client, PROMOTER_LOGIN, f"someone{i}", "wrong", ip=f"2001:db8:1:2::{i + 1:x}")
    assert (
        login(client, ADMIN_LOGIN, "owner", PASSWORD, ip="2001:db8:1:2:ffff::1").status_code == 429
    )
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD, ip="2001:db8:1:3::1").status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_client_is_locked_not_the_proxy(
    client, owner, settings
):
    settings.TRUST_X_FORWARDED_FOR = True
    proxy = "10.0.0.1"
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, f"x{i}", "wrong", ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.66"}
    locked = login(
        client,
        ADMIN_LOGIN,
        "owner",
        PASSWORD,
        ip=proxy,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.66",
    )
    assert locked.status_code == 429
    other = login(
        client, ADMIN_LOGIN, "owner", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="192.0.2.9"
    )
    assert other.status_code == 302


def test_the_lock_ends_after_the_cool_off(client, owner):
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, "owner", f"wrong-{i}")
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD).status_code == 429
    # Let the cool-off pass: the failures are as old as the cool-off and a second more.
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD).status_code == 302


def test_refused_attempts_do_not_extend_the_lock(client, owner):
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, "owner", f"wrong-{i}")
    before = list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start"))
    for _ in range(5):
        assert login(client, ADMIN_LOGIN, "owner", "still-guessing").status_code == 429
    assert list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start")) == before


def test_the_api_token_login_answers_429_json_with_retry_after(client, promoter_user):
    for i in range(LIMIT - 1):
        assert token(client, "pro", f"wrong-{i}").status_code == 401
    assert token(client, "pro", "wrong-last").status_code == 429
    for password in ("wrong-again", PASSWORD):
        response = token(client, "pro", password)
        assert response.status_code == 429
        assert response.json() == {
            "code": "rate_limited",
            "message": "Too many failed logins: wait and retry.",
        }
        assert 0 < int(response["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    # Per username: another address is refused too; the promoter login page shares the lock.
    assert token(client, "pro", PASSWORD, ip="192.0.2.50").status_code == 429
    assert login(client, PROMOTER_LOGIN, "pro", PASSWORD, ip="192.0.2.50").status_code == 429


def test_wrong_api_logins_and_page_logins_count_together(client, promoter_user):
    for i in range(LIMIT // 2):
        token(client, "pro", f"wrong-{i}")
    for i in range(LIMIT - LIMIT // 2):
        login(client, PROMOTER_LOGIN, "pro", f"wrong-page-{i}")
    assert token(client, "pro", PASSWORD).status_code == 429


def _lock(client, username: str) -> None:
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, username, f"wrong-{i}", ip=f"203.0.113.{i + 1}")


def test_the_owner_unlocks_a_username_in_the_admin(client, owner, promoter_user):
    _lock(client, "pro")
    assert login(client, PROMOTER_LOGIN, "pro", PASSWORD, ip="192.0.2.7").status_code == 429

    admin = Client()
    admin.force_login(owner)
    page = admin.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "Unlock the selected usernames" in page.content.decode()
    assert "delete_selected" not in page.content.decode()
    assert "locked" in page.content.decode()
    one_row = AccessAttempt.objects.filter(username="pro").first()
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock_usernames", "_selected_action": [one_row.pk]},
        follow=True,
    )
    assert "Unlocked pro" in response.content.decode()
    assert not AccessAttempt.objects.filter(username="pro").exists()
    unlocks = AuditEntry.objects.filter(object_type="axes.accessattempt", note="login unlocked")
    assert unlocks.exists()
    assert {entry.actor_name for entry in unlocks} == {owner.username}
    assert {entry.changes["username"][0] for entry in unlocks} == {"pro"}

    assert login(client, PROMOTER_LOGIN, "pro", PASSWORD, ip="192.0.2.7").status_code == 302


def test_the_owner_unlocks_an_address_in_the_admin(client, owner):
    for i in range(LIMIT):
        login(client, ADMIN_LOGIN, f"someone{i}", "wrong")
    admin = Client()
    admin.force_login(owner)
    row = AccessAttempt.objects.first()
    admin.post(
        "/admin/axes/accessattempt/", {"action": "unlock_addresses", "_selected_action": [row.pk]}
    )
    assert not AccessAttempt.objects.exists()
    assert AuditEntry.objects.filter(
        object_type="axes.accessattempt", note="login unlocked", actor_name=owner.username
    ).exists()
    assert login(client, ADMIN_LOGIN, "owner", PASSWORD).status_code == 302


def test_only_the_owner_sees_lockouts_whatever_the_staff_permissions(client, owner):
    _lock(client, "owner")
    staff = get_user_model().objects.create_user("support", password="s3cret-pass-1", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="axes"))
    support = Client()
    support.force_login(staff)
    assert support.get("/admin/axes/accessattempt/").status_code == 403
    row = AccessAttempt.objects.first()
    support.post(
        "/admin/axes/accessattempt/", {"action": "unlock_usernames", "_selected_action": [row.pk]}
    )
    assert AccessAttempt.objects.filter(username="owner").exists()
    assert "axes" not in support.get("/admin/").content.decode()


def test_demo_logins_are_refused_by_every_login_when_debug_is_off(client, settings):
    User = get_user_model()
    User.objects.create_superuser("admin", "a@example.com", "admin")
    User.objects.create_user("promoter", "p@example.com", "promoter")
    settings.DEBUG = False
    assert login(client, ADMIN_LOGIN, "admin", "admin").status_code == 200
    assert login(client, PROMOTER_LOGIN, "promoter", "promoter").status_code == 200
    assert not logged_in(client)
    assert token(client, "promoter", "promoter").status_code == 401
    settings.DEBUG = True
    assert login(client, PROMOTER_LOGIN, "promoter", "promoter").status_code == 302
