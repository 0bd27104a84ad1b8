"""The promoter API (contract §4): tokens, /promoter/me, /promoter/commissions, isolation."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from commissions.models import ApiToken, CommissionSettings
from tests.commissions.factories import PromoterFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


PASSWORD = "pw-Secret-123"


def token_for(client, username: str, password: str = PASSWORD) -> str:
    response = client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def get(client, path: str, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(path, **headers)


def test_token_is_issued_once_and_only_its_hash_is_stored(client, promoter):
    token = token_for(client, promoter.user.username)
    row = ApiToken.objects.get()
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.key_hash, row.prefix)


def test_failed_logins_lock_the_token_login_and_right_ones_do_not_count(client, promoter):
    limit = settings.AXES_FAILURE_LIMIT

    def login(password: str, username: str = promoter.user.username, ip: str = "203.0.113.20"):
        return client.post(
            "/api/v1/auth/token",
            {"username": username, "password": password},
            content_type="application/json",
            REMOTE_ADDR=ip,
        )

    assert [login("nope").status_code for _ in range(limit - 1)] == [401] * (limit - 1)
    assert [login(PASSWORD).status_code for _ in range(3)] == [200] * 3  # not counted
    assert login("nope").status_code == 429  # the failure that reaches the limit locks
    limited = login(PASSWORD)  # even the right password, until the cool-off passes
    assert limited.status_code == 429
    assert limited.json() == {
        "code": "rate_limited",
        "message": "Too many failed logins: wait and retry.",
    }
    assert 0 < int(limited["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    UserFactory(username="someone_else")
    assert login(PASSWORD, "someone_else", ip="198.51.100.20").status_code == 200


def test_wrong_password_is_401_json(client, promoter):
    response = client.post(
        "/api/v1/auth/token",
        {"username": promoter.user.username, "password": "nope"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/promoter/me", "/api/v1/promoter/commissions"])
@pytest.mark.parametrize("token", [None, "kami_forged", ""])
def test_promoter_endpoints_need_a_valid_token(client, path, token):
    response = get(client, path, token)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message"}


def test_a_user_who_is_not_a_promoter_gets_403(client):
    UserFactory(username="shopper")
    token = token_for(client, "shopper")
    response = get(client, "/api/v1/promoter/me", token)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_me_shows_decimal_balances_and_counts(client, sell, checkout, promoter, settings):
    settings.SITE_URL = "https://shop.example"
    conf = CommissionSettings.load()
    conf.hold_days = 0
    conf.save()
    client.get("/?ref=ALICE")
    sell(quantity=1)
    sell(quantity=2)
    checkout(ref="ALICE", email="unpaid@example.com")  # never paid: not an order that counts
    PromoterFactory(code="RECRUIT", upline=promoter)
    token = token_for(client, promoter.user.username)
    me = get(client, "/api/v1/promoter/me", token).json()
    assert me == {
        "code": "ALICE",
        "link": "https://shop.example/?ref=ALICE",
        "balances": {"pending": "0.00", "available": "30.00", "requested": "0.00", "paid": "0.00"},
        "clicks": 1,
        "orders": 2,
        "team_size": 1,
    }


def test_commissions_are_the_callers_own_newest_first(client, sell, promoter, upline):
    first = sell(quantity=1)
    second = sell(quantity=3)
    PromoterFactory(code="BOB")
    other = sell(ref="BOB")
    mine = get(client, "/api/v1/promoter/commissions", token_for(client, promoter.user.username))
    assert mine.status_code == 200
    rows = mine.json()
    assert [r["order_no"] for r in rows] == [second.order_no, first.order_no]
    assert rows[0] == {
        "order_no": second.order_no,
        "level": 1,
        "amount": "30.00",
        "status": "pending",
        "available_at": rows[0]["available_at"],
    }
    assert other.order_no not in mine.content.decode()

    team = get(client, "/api/v1/promoter/commissions", token_for(client, upline.user.username))
    assert [(r["order_no"], r["level"], r["amount"]) for r in team.json()] == [
        (second.order_no, 2, "9.00"),
        (first.order_no, 2, "3.00"),
    ]


def test_commissions_page_through_with_limit_and_offset(client, sell, promoter):
    orders = [sell() for _ in range(3)]
    token = token_for(client, promoter.user.username)
    page = get(client, "/api/v1/promoter/commissions?limit=2&offset=1", token).json()
    assert [r["order_no"] for r in page] == [orders[1].order_no, orders[0].order_no]
    assert get(client, "/api/v1/promoter/commissions?limit=0", token).status_code == 422
