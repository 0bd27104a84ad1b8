"""Risk control as a script sees it (contract §2, §4): 403 blocked, 429 rate_limited."""

from __future__ import annotations

import pytest
from django.test import override_settings

from core.errors import RateLimited
from riskrules.hooks import throttle_checkout
from riskrules.models import RiskDecision, RiskSettings
from riskrules.services import blocklist_add
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def create(client, ip: str = "203.0.113.5", **body):
    payload = {"product": "p", "quantity": 1, "email": "buyer@example.com"} | body
    return client.post("/api/v1/orders", payload, content_type="application/json", REMOTE_ADDR=ip)


@pytest.mark.django_db(transaction=True)
def test_blocked_checkout_is_403_json_naming_the_limit(client):
    stock_product(3, slug="p")
    blocklist_add(kind="network", value="203.0.113.0/24")
    response = create(client)
    assert response.status_code == 403
    assert response.json() == {
        "code": "blocked",
        "message": "Orders from your network are not accepted.",
    }
    assert RiskDecision.objects.get().client_ip == "203.0.113.5"
    assert create(client, ip="192.0.2.1").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_blocked_checkout_on_the_product_page(client):
    stock_product(3, slug="p")
    blocklist_add(kind="email", value="bad@example.com")
    response = client.post("/p/p", {"email": "bad@example.com", "quantity": "1"})
    assert response.status_code == 403
    assert b"Orders for this email address are not accepted." in response.content


def test_checkout_rate_limit_is_429_with_retry_after_per_ip(client):
    stock_product(3, slug="p")
    RiskSettings.objects.update_or_create(pk=1, defaults={"checkout_rate_limit": 3})
    # Every attempt counts, even invalid ones: the limit brakes scripts before any work.
    assert [create(client, quantity=0).status_code for _ in range(3)] == [422] * 3
    limited = create(client)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert "at most 3 per minute" in limited.json()["message"]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert create(client, ip="203.0.113.6").status_code == 201  # another client is not slowed


@override_settings(TRUST_X_FORWARDED_FOR=True)
def test_rate_limit_sees_the_client_ip_the_proxy_reports(client):
    stock_product(3, slug="p")
    RiskSettings.objects.update_or_create(pk=1, defaults={"checkout_rate_limit": 1})

    def via_proxy(forwarded: str):
        return client.post(
            "/api/v1/orders",
            {"product": "p", "quantity": 0, "email": "b@example.com"},
            content_type="application/json",
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    assert via_proxy("1.1.1.1, 198.51.100.1").status_code == 422
    # A spoofed first hop does not make a new client: the proxy's last hop is the same.
    assert via_proxy("9.9.9.9, 198.51.100.1").status_code == 429
    assert via_proxy("198.51.100.2").status_code == 422


def test_default_rate_limit_is_generous():
    settings = RiskSettings.load()
    assert settings.checkout_rate_limit == 20 and settings.checkout_rate_window_seconds == 60
    for _ in range(20):
        throttle_checkout(client_ip="192.0.2.9", now=1_000_020.0)
    with pytest.raises(RateLimited) as limited:
        throttle_checkout(client_ip="192.0.2.9", now=1_000_050.0)
    assert limited.value.retry_after == 30
    throttle_checkout(client_ip="192.0.2.9", now=1_000_080.0)  # the next window starts afresh


def test_rate_limit_counts_in_the_process_without_the_cache(monkeypatch, caplog):
    """core.ratelimit's one policy: an unreachable cache neither refuses every buyer nor lifts
    the limit; hits are counted in this process (and logged)."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("redis is away")

    monkeypatch.setattr(cache, "incr", down)
    monkeypatch.setattr(cache, "add", down)
    RiskSettings.objects.update_or_create(pk=1, defaults={"checkout_rate_limit": 2})
    throttle_checkout(client_ip="192.0.2.10", now=2_000_040.0)
    throttle_checkout(client_ip="192.0.2.10", now=2_000_041.0)
    with pytest.raises(RateLimited):
        throttle_checkout(client_ip="192.0.2.10", now=2_000_042.0)
    assert "the cache is unreachable" in caplog.text


def test_an_ipv6_client_is_throttled_as_its_64_an_ipv4_one_as_its_address():
    """Rotating addresses inside one IPv6 /64 costs nothing, so the checkout limit counts the
    /64; IPv4 neighbours in a /24 are counted apart (often different people)."""
    for i in range(20):
        throttle_checkout(client_ip=f"2001:db8:5:6::{i + 1:x}", now=3_000_010.0)
    with pytest.raises(RateLimited):
        throttle_checkout(client_ip="2001:db8:5:6:ffff::1", now=3_000_011.0)
    throttle_checkout(client_ip="2001:db8:5:7::1", now=3_000_011.0)  # the next /64
    for i in range(21):
        throttle_checkout(client_ip=f"192.0.2.{i + 1}", now=3_000_012.0)
