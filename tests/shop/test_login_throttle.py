"""Password logins are braked per client IP and per username (core/auth_forms.py): the
right password after too many wrong ones is refused too, on the admin and the promoter login."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from core.auth_forms import LOGIN_FAILURES_PER_IP, LOGIN_FAILURES_PER_USER

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def owner():
    return get_user_model().objects.create_superuser("owner", "o@example.com", "right-pass-9")


def _login(client, url: str, username: str, password: str, ip: str = "198.51.100.7"):
    return client.post(
        url, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )


def test_the_right_password_is_refused_after_too_many_wrong_ones(client, owner):
    for _ in range(LOGIN_FAILURES_PER_USER.limit):
        assert _login(client, ADMIN_LOGIN, "owner", "wrong").status_code == 200
    response = _login(client, ADMIN_LOGIN, "owner", "right-pass-9")
    assert response.status_code == 200  # the form again, not the redirect of a login
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_guesses_spread_over_addresses_still_hit_the_per_username_budget(client, owner):
    for i in range(LOGIN_FAILURES_PER_USER.limit):
        _login(client, ADMIN_LOGIN, "owner", "wrong", ip=f"203.0.113.{i + 1}")
    assert _login(client, ADMIN_LOGIN, "owner", "right-pass-9", ip="192.0.2.1").status_code == 200
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_accounts_hits_the_per_ip_budget(client, owner):
    for i in range(LOGIN_FAILURES_PER_IP.limit):
        _login(client, ADMIN_LOGIN, f"someone{i}", "wrong")
    assert _login(client, ADMIN_LOGIN, "owner", "right-pass-9").status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_right_login_under_the_limit_works_and_costs_nothing(client, owner):
    for _ in range(LOGIN_FAILURES_PER_USER.limit - 2):
        _login(client, ADMIN_LOGIN, "owner", "wrong")
    assert _login(client, ADMIN_LOGIN, "owner", "right-pass-9").status_code == 302
    client.logout()
    # The success gave its slot back: one more wrong try still leaves room for the right one.
    _login(client, ADMIN_LOGIN, "owner", "wrong")
    assert _login(client, ADMIN_LOGIN, "owner", "right-pass-9").status_code == 302


def test_the_promoter_login_is_braked_too(client):
    get_user_model().objects.create_user("pro", "p@example.com", "right-pass-9")
    for _ in range(LOGIN_FAILURES_PER_USER.limit):
        _login(client, "/promoter/login", "pro", "wrong")
    _login(client, "/promoter/login", "pro", "right-pass-9")
    assert "_auth_user_id" not in client.session
