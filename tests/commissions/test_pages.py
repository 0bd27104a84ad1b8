"""Promoter pages: join, dashboard, withdrawals from the page, and isolation by URL."""

from __future__ import annotations

import re

import pytest

from commissions.models import CommissionSettings, LedgerEntry, Promoter, Withdrawal
from commissions.services import withdrawal_request
from tests.commissions.factories import PromoterFactory
from tests.commissions.helpers import dashboard_html

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def no_hold():
    conf = CommissionSettings.load()
    conf.hold_days = 0
    conf.save()


def test_join_creates_an_account_and_a_promoter_with_the_cookie_upline(client, upline):
    client.get("/?ref=UP")
    page = client.get("/promoter/join")
    assert page.status_code == 200 and 'value="UP"' in page.content.decode()
    response = client.post(
        "/promoter/join",
        {
            "username": "newbie",
            "email": "newbie@example.org",
            "password": "a-Long-pass-99",
            "upline": "UP",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/promoter/"
    promoter = Promoter.objects.get(user__username="newbie")
    assert promoter.upline == upline and promoter.status == "active"
    assert re.fullmatch(r"[A-Z2-9]{6}", promoter.code)
    dashboard = client.get("/promoter/")
    assert dashboard.status_code == 200
    assert f"?ref={promoter.code}" in dashboard.content.decode()


def test_join_with_owner_approval_starts_pending(client):
    conf = CommissionSettings.load()
    conf.approval_required = True
    conf.save()
    client.post(
        "/promoter/join",
        {"username": "waiting", "email": "w@example.org", "password": "a-Long-pass-99"},
    )
    assert Promoter.objects.get(user__username="waiting").status == "pending"
    assert "waiting for the shop owner" in client.get("/promoter/").content.decode()


def test_join_errors_are_shown(client):
    response = client.post("/promoter/join", {"username": "x", "email": "bad", "password": "short"})
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert not Promoter.objects.exists()


def test_dashboard_needs_a_login(client):
    response = client.get("/promoter/")
    assert response.status_code == 302 and response["Location"].startswith("/promoter/login")


def test_dashboard_shows_link_qr_stats_chart_balances_and_masked_commissions(
    client, sell, promoter, no_hold
):
    client.get("/?ref=ALICE")
    order = sell(email="carol.buyer@example.net")
    PromoterFactory(code="RECRUIT", upline=promoter)
    sell(ref="RECRUIT")
    client.force_login(promoter.user)
    html = client.get("/promoter/").content.decode()
    assert 'class="copy" data-copy="' in html and "?ref=ALICE" in html
    assert '<svg class="qr"' in html and '<svg class="chart"' in html
    assert 'data-testid="stat-clicks">1<' in html
    assert 'data-testid="stat-orders">1<' in html
    assert 'data-testid="stat-conversion">100.0%<' in html
    assert order.order_no in html
    assert "c***@e***.net" in html and "carol.buyer" not in html
    # 10.00 direct + 3.00 team reward on RECRUIT's sale
    assert 'data-testid="balance-available">13.00 USD<' in html
    assert 'data-testid="team-row"><td class="mono">RECRUIT</td><td>' in html
    assert "3.00 USD</td></tr>" in html  # what RECRUIT earned ALICE
    # Nothing is loaded from elsewhere: every script and stylesheet is the shop's own.
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_withdrawal_from_the_page_and_its_history(client, sell, promoter, no_hold):
    sell(quantity=2)  # 20.00 available
    client.force_login(promoter.user)
    low = client.post(
        "/promoter/withdraw", {"amount": "9.99", "method": "paypal", "account": "a@b"}
    )
    assert low.status_code == 422 and "minimum" in low.content.decode()
    too_much = client.post(
        "/promoter/withdraw", {"amount": "20.01", "method": "paypal", "account": "a@b"}
    )
    assert too_much.status_code == 422 and "available balance" in too_much.content.decode()
    ok = client.post(
        "/promoter/withdraw", {"amount": "15.50", "method": "alipay", "account": "138"}
    )
    assert ok.status_code == 302
    w = Withdrawal.objects.get()
    assert (w.amount, w.method, w.status) == (1550, "alipay", "requested")
    html = client.get("/promoter/").content.decode()
    assert 'data-testid="withdrawal-row"' in html
    assert 'data-testid="balance-requested">15.50 USD<' in html
    assert 'data-testid="balance-available">4.50 USD<' in html


def test_only_enabled_payout_methods_are_accepted(client, sell, promoter, no_hold):
    conf = CommissionSettings.load()
    conf.payout_methods = ["usdt"]
    conf.save()
    sell(quantity=2)
    client.force_login(promoter.user)
    html = client.get("/promoter/").content.decode()
    assert 'value="usdt"' in html and 'value="paypal"' not in html
    bad = client.post("/promoter/withdraw", {"amount": "10", "method": "paypal", "account": "a"})
    assert bad.status_code == 422 and not Withdrawal.objects.exists()


def test_a_promoter_cannot_read_another_promoters_anything(client, sell, promoter, no_hold):
    bob = PromoterFactory(code="BOB")
    bob_order = sell(ref="BOB", email="bob.buyer@example.net", quantity=2)
    bob_w = withdrawal_request(promoter=bob, amount=1000, method="bank", account="DE89 3704")
    sell(ref="ALICE")
    client.force_login(promoter.user)

    html = client.get("/promoter/").content.decode()
    assert bob_order.order_no not in html and "DE89" not in html and "BOB" not in html
    assert client.get(f"/promoter/withdrawals/{bob_w.pk}").status_code == 404
    for query in ("?promoter=BOB", f"?promoter_id={bob.pk}", "?code=BOB"):
        assert bob_order.order_no not in client.get("/promoter/" + query).content.decode()

    client.force_login(bob.user)
    assert client.get(f"/promoter/withdrawals/{bob_w.pk}").status_code == 200


def test_joining_without_approval_posts_no_ledger_entry(client, upline):
    response = client.post(
        "/promoter/join",
        {
            "username": "direct",
            "email": "direct@example.org",
            "password": "a-Long-pass-99",
            "upline": "UP",
        },
    )
    assert response.status_code == 302
    joined = Promoter.objects.get(user__username="direct")
    assert (joined.status, joined.upline) == ("active", upline)
    assert not LedgerEntry.objects.exists()
    html = dashboard_html(client, upline)
    assert 'data-testid="stat-team">1<' in html
    assert 'data-testid="balance-pending">0.00 USD<' in html
    assert 'data-testid="balance-available">0.00 USD<' in html
