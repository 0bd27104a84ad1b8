"""API tokens end (commissions/api_tokens.py): they expire, a user holds a bounded number, a
password change revokes them all, and an inactive user's tokens authenticate nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from commissions.models import ApiToken
from tests.commissions.factories import PromoterFactory, UserFactory
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PASSWORD = "pw-Secret-123"
ME = "/api/v1/promoter/me"


def new_token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token"}
    return response.json()["token"]


def me(client, token: str) -> int:
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_a_token_expires_after_the_configured_days(client, promoter, settings):
    settings.API_TOKEN_TTL_DAYS = 2
    before = timezone.now()
    token = new_token(client, promoter.user.username)
    after = timezone.now()
    row = ApiToken.objects.get()
    assert before + timedelta(days=2) <= row.expires_at <= after + timedelta(days=2)
    assert me(client, token) == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


def test_logging_in_again_and_again_keeps_a_bounded_number_of_tokens(client, promoter, settings):
    settings.API_TOKENS_PER_USER = 3
    tokens = [new_token(client, promoter.user.username) for _ in range(5)]
    assert ApiToken.objects.filter(user=promoter.user).count() == 3
    assert [me(client, t) for t in tokens] == [401, 401, 200, 200, 200]  # the oldest revoked


def test_expired_tokens_are_removed_when_a_new_one_is_made(client, promoter):
    new_token(client, promoter.user.username)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(days=1))
    new_token(client, promoter.user.username)
    assert ApiToken.objects.filter(expires_at__lte=timezone.now()).count() == 0
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_logins_cannot_pile_up_tokens_past_the_cap(settings):
    settings.API_TOKENS_PER_USER = 3
    promoter = PromoterFactory(code="RACE")

    def mint(i: int) -> int:
        return (
            Client()
            .post(
                "/api/v1/auth/token",
                {"username": promoter.user.username, "password": PASSWORD},
                content_type="application/json",
                REMOTE_ADDR=f"198.51.100.{i + 1}",
            )
            .status_code
        )

    assert run_concurrently(8, mint) == [200] * 8
    assert ApiToken.objects.filter(user=promoter.user).count() == 3


def test_set_password_revokes_every_token_of_the_user(client, promoter):
    other = PromoterFactory(code="OTHER")
    mine = [new_token(client, promoter.user.username) for _ in range(2)]
    theirs = new_token(client, other.user.username)
    user = User.objects.get(pk=promoter.user.pk)
    user.set_password("a-New-pass-77")
    user.save()
    assert [me(client, t) for t in mine] == [401, 401]
    assert not ApiToken.objects.filter(user=promoter.user).exists()
    assert me(client, theirs) == 200
    assert me(client, new_token(client, promoter.user.username, "a-New-pass-77")) == 200


def test_a_password_change_in_the_admin_revokes_the_tokens(client, promoter, admin_client):
    token = new_token(client, promoter.user.username)
    response = admin_client.post(
        f"/admin/auth/user/{promoter.user.pk}/password/",
        {"password1": "a-New-pass-77", "password2": "a-New-pass-77", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert me(client, token) == 401


def test_a_hash_upgrade_at_login_is_not_a_password_change(client, promoter, settings):
    """Django re-hashes a password with the preferred hasher when it checks it; the password
    is the same, so the tokens stay."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    token = new_token(client, promoter.user.username)
    User.objects.filter(pk=promoter.user.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )
    new_token(client, promoter.user.username)  # checks the password: upgraded to MD5
    assert User.objects.get(pk=promoter.user.pk).password.startswith("md5$")
    assert me(client, token) == 200


def test_a_deactivated_users_tokens_stop_working(client, promoter):
    token = new_token(client, promoter.user.username)
    User.objects.filter(pk=promoter.user.pk).update(is_active=False)
    assert me(client, token) == 401
    response = client.post(
        "/api/v1/auth/token",
        {"username": promoter.user.username, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 401
    User.objects.filter(pk=promoter.user.pk).update(is_active=True)
    assert me(client, token) == 200


def test_a_token_is_only_stored_hashed_and_shown_once(client):
    UserFactory(username="scripter")
    token = new_token(client, "scripter")
    row = ApiToken.objects.get()
    assert token not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
