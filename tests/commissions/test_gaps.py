"""Gaps in the promoter tests: release dates and the earnings chart on the dashboard, the
reconciliation of broken withdrawals and orphan entries, attribution frozen at checkout, and
the owner's approval of promoters (joining pays nobody)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import datetime, time, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from commissions.models import CommissionSettings, LedgerEntry, Promoter, Withdrawal
from commissions.reconcile import ledger_differences
from commissions.selectors import (
    Balances,
    earnings_by_day,
    next_releases,
    promoter_balances,
)
from commissions.services import account_key, ledger_adjust, withdrawal_request
from orders.models import Order, OrderStatus
from shop.processes import database_url
from shop.referrals import REF_COOKIE
from tests.commissions.factories import PromoterFactory
from tests.stripe_helpers import completed_event, refund_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def entries(order) -> dict[tuple[int, str], int]:
    return {
        (e.level, e.promoter.code): e.amount
        for e in LedgerEntry.objects.filter(order=order, kind="commission").select_related(
            "promoter"
        )
    }


def assert_reconciles() -> None:
    assert ledger_differences() == []
    call_command("reconcile_ledger", stdout=io.StringIO())


def set_conf(**fields) -> None:
    conf = CommissionSettings.load()
    for name, value in fields.items():
        setattr(conf, name, value)
    conf.save()


def dashboard_html(client, promoter: Promoter) -> str:
    client.force_login(promoter.user)
    response = client.get("/promoter/")
    assert response.status_code == 200
    return response.content.decode()


# --- (1) Next release dates on the dashboard -----------------------------------------------------


def release_day(order: Order, hold_days: int) -> str:
    """The local day an order's commissions leave the hold, as the dashboard prints it."""
    return f"{timezone.localtime(order.delivered_at + timedelta(days=hold_days)):%Y-%m-%d}"


def releases_on_page(html: str) -> list[str]:
    return re.findall(r'<li data-testid="release">([^<]*)</li>', html)


def test_dashboard_lists_next_release_dates_with_their_amounts(client, sell, promoter, upline):
    first = sell()  # 10.00 to ALICE, 3.00 to UP; on hold the default 7 days
    second = sell(quantity=2)  # 20.00 / 6.00, released the same day
    set_conf(hold_days=14)
    third = sell()  # 10.00 / 3.00, released a week later
    ledger_adjust(promoter=promoter, amount=500, reason="Goodwill")  # available now: no release

    week, fortnight = release_day(first, 7), release_day(third, 14)
    assert release_day(second, 7) == week
    assert week < fortnight
    releases = next_releases(promoter_id=promoter.pk)
    assert [(f"{day:%Y-%m-%d}", amount) for day, amount in releases] == [
        (week, 3000),
        (fortnight, 1000),
    ]
    html = dashboard_html(client, promoter)
    assert releases_on_page(html) == [f"{week}: 30.00 USD", f"{fortnight}: 10.00 USD"]
    # The upline sees the release dates of their own team rewards, not ALICE's amounts.
    assert releases_on_page(dashboard_html(client, upline)) == [
        f"{week}: 9.00 USD",
        f"{fortnight}: 3.00 USD",
    ]


def test_no_release_dates_once_nothing_is_on_hold(client, sell, promoter):
    set_conf(hold_days=0)
    sell()
    assert next_releases(promoter_id=promoter.pk) == []
    html = dashboard_html(client, promoter)
    assert 'data-testid="balance-available">10.00 USD<' in html
    assert releases_on_page(html) == [] and "Next releases" not in html


# --- (2) Earnings by day, and the chart ------------------------------------------------------


CHART_BAR = re.compile(
    r'<rect class="(?P<css>bar[^"]*)" x="[\d.]+" y="[\d.]+" width="[\d.]+" '
    r'height="(?P<height>[\d.]+)"><title>(?P<title>[^<]*)</title></rect>'
)


def chart_bars(html: str) -> list[tuple[str, float, str]]:
    svg = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert svg, "no earnings chart on the page"
    return [(m["css"], float(m["height"]), m["title"]) for m in CHART_BAR.finditer(svg.group(0))]


def test_earnings_by_day_nets_a_partial_refund_and_the_chart_shows_it(
    client, sell, deliver, promoter, upline
):
    sell(payment_intent="pi_chart")  # 10.00 to ALICE, 3.00 to UP
    deliver(refund_event("pi_chart", amount=10000, amount_refunded=2500))  # a quarter back
    today = timezone.localdate()

    days = earnings_by_day(promoter_id=promoter.pk)
    assert [day for day, _ in days] == [today - timedelta(days=29 - i) for i in range(30)]
    assert days[-1] == (today, 1000 - 250)
    assert [value for _, value in days[:-1]] == [0] * 29
    assert earnings_by_day(promoter_id=upline.pk)[-1] == (today, 300 - 75)

    html = dashboard_html(client, promoter)
    assert "Earnings per day, 7.50 USD in total" in html
    bars = chart_bars(html)
    assert len(bars) == 30
    css, height, title = bars[-1]
    assert (css, title) == ("bar", f"{today.isoformat()}: 7.50 USD")
    assert height > 0
    assert [h for _, h, _ in bars[:-1]] == [0.0] * 29


def test_earnings_by_day_puts_each_entry_on_its_day_within_the_window(sell, promoter):
    today = timezone.localdate()
    orders = [sell() for _ in range(4)]

    def created_on(order: Order, days_ago: int) -> None:
        # ``created_at`` is not money: the append-only trigger lets a test move it.
        noon = timezone.make_aware(datetime.combine(today - timedelta(days=days_ago), time(12)))
        LedgerEntry.objects.filter(order=order).update(created_at=noon)

    created_on(orders[0], 3)
    created_on(orders[1], 29)  # the first day of the window
    created_on(orders[2], 30)  # one day too old
    by_day = dict(earnings_by_day(promoter_id=promoter.pk))
    assert len(by_day) == 30 and today - timedelta(days=30) not in by_day
    assert by_day[today] == 1000
    assert by_day[today - timedelta(days=3)] == 1000
    assert by_day[today - timedelta(days=29)] == 1000
    assert sum(by_day.values()) == 3000


# --- (3) Reconciliation of broken rows -----------------------------------------------------------

INSERT_ENTRY = """
INSERT INTO commissions_ledgerentry
    (promoter_id, kind, amount, currency, order_id, level, withdrawal_id,
     available_at, reason, created_at, created_by_id)
VALUES (%s, %s, %s, 'USD', %s, %s, %s, %s, %s, %s, NULL)
RETURNING id
"""


def insert_entry(
    *, promoter, kind, amount, order=None, level=None, withdrawal=None, reason=""
) -> int:
    """Write a ledger row with plain SQL, past every service and model guard (as a bug or a
    hand-written fix in psql would)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_ENTRY,
            [
                promoter.pk,
                kind,
                amount,
                order.pk if order else None,
                level,
                withdrawal.pk if withdrawal else None,
                now,
                reason,
                now,
            ],
        )
        return cursor.fetchone()[0]


def bare_withdrawal(promoter, amount: int) -> Withdrawal:
    """A withdrawal row made without ``withdrawal_request`` (so without its ledger entry)."""
    return Withdrawal.objects.create(
        promoter=promoter,
        amount=amount,
        currency="USD",
        method="paypal",
        account="x@pp.com",
        account_key=account_key("paypal", "x@pp.com"),
    )


def test_reconcile_finds_a_mismatched_withdrawal_and_orphan_entries(sell, promoter):
    sell()
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    withdrawal_request(promoter=promoter, amount=2000, method="bank", account="DE89")
    unreferred = sell(ref="")
    assert_reconciles()  # the real flows leave nothing to report

    broken = bare_withdrawal(promoter, 2000)
    insert_entry(promoter=promoter, kind="withdrawal", amount=-1500, withdrawal=broken)
    # A commission on an order nobody referred, and an adjustment tied to an order.
    insert_entry(promoter=promoter, kind="commission", amount=1000, order=unreferred, level=1)
    insert_entry(promoter=promoter, kind="adjustment", amount=100, order=unreferred, reason="?")

    expected = {
        f"withdrawal {broken.pk}: ledger took 1500, amount 2000",
        f"order {unreferred.pk}: ledger entries but no posted attribution",
        "1 entries linked to the wrong kind of record",
    }
    assert set(ledger_differences()) == expected
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 difference"):
        call_command("reconcile_ledger", stdout=io.StringIO(), stderr=err)
    assert set(err.getvalue().splitlines()) == expected


def test_reconcile_finds_a_withdrawal_with_no_ledger_entry(promoter):
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    assert_reconciles()
    ghost = bare_withdrawal(promoter, 1200)
    assert ledger_differences() == [f"withdrawal {ghost.pk}: ledger took 0, amount 1200"]


def run_reconcile_process() -> subprocess.CompletedProcess:
    """``manage.py reconcile_ledger`` as a separate process, on this test's database."""
    url = database_url(connection.settings_dict)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings_test", "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "manage.py", "reconcile_ledger"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)  # committed rows, so the other process sees them
def test_reconcile_ledger_command_exits_non_zero_as_a_process():
    promoter = PromoterFactory(code="PROC")
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    clean = run_reconcile_process()
    assert clean.returncode == 0, clean.stderr
    assert "no differences" in clean.stdout

    ghost = bare_withdrawal(promoter, 1200)
    broken = run_reconcile_process()
    assert broken.returncode != 0
    assert f"withdrawal {ghost.pk}: ledger took 0, amount 1200" in broken.stderr
    assert "does not reconcile" in broken.stderr


# --- (4) Attribution is frozen at checkout --------------------------------------------------


def test_changing_the_upline_after_checkout_keeps_the_team_reward_with_the_old_one(
    checkout, deliver, sell, promoter, upline
):
    order = checkout(ref="ALICE")
    vee = PromoterFactory(code="VEE")
    promoter.upline = vee
    promoter.save()

    deliver(completed_event(order))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert entries(order) == {(1, "ALICE"): 1000, (2, "UP"): 300}
    assert not LedgerEntry.objects.filter(promoter=vee).exists()

    # The new upline counts from the next checkout on.
    assert entries(sell()) == {(1, "ALICE"): 1000, (2, "VEE"): 300}
    assert_reconciles()


def test_a_new_ref_cookie_between_checkout_and_payment_changes_nothing(
    client, product, promoter, django_capture_on_commit_callbacks
):
    bob = PromoterFactory(code="BOB")
    client.get("/?ref=ALICE")
    client.post(f"/p/{product.slug}", {"email": "buyer@example.net", "quantity": "1"})
    order = Order.objects.get()
    assert (order.ref_code, order.attribution.promoter) == ("ALICE", promoter)

    # The buyer follows BOB's link to the payment page, then pays: the cookie now says BOB.
    assert REF_COOKIE in client.get(f"/pay/sandbox/{order.order_no}?ref=BOB").cookies
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/pay/sandbox/{order.order_no}")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.ref_code == "ALICE" and order.attribution.promoter == promoter
    assert entries(order) == {(1, "ALICE"): 1000, (2, "UP"): 300}
    assert not LedgerEntry.objects.filter(promoter=bob).exists()

    # The cookie did change: the browser's next order is BOB's.
    client.post(f"/p/{product.slug}", {"email": "buyer@example.net", "quantity": "1"})
    assert Order.objects.latest("created_at").attribution.promoter == bob


# --- (5) The owner approves promoters; joining pays nobody -----------------------------------


def test_admin_approve_action_activates_pending_promoters_only(client, sell, upline):
    set_conf(approval_required=True)
    client.post(
        "/promoter/join",
        {
            "username": "newbie",
            "email": "newbie@example.org",
            "password": "a-Long-pass-99",
            "upline": "UP",
        },
    )
    newbie = Promoter.objects.get(user__username="newbie")
    assert (newbie.status, newbie.upline) == ("pending", upline)
    assert entries(sell(ref=newbie.code)) == {}  # a pending promoter earns nothing yet
    suspended = PromoterFactory(code="SUSP", status="suspended")

    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", "owner-pw-1")
    client.force_login(owner)
    response = client.post(
        "/admin/commissions/promoter/",
        {"action": "approve", "_selected_action": [newbie.pk, suspended.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 promoter(s) approved." in [str(m) for m in response.context["messages"]]
    newbie.refresh_from_db()
    suspended.refresh_from_db()
    assert (newbie.status, suspended.status) == ("active", "suspended")

    # Neither joining nor being approved posted anything: no fee, no reward for recruiting.
    assert not LedgerEntry.objects.exists()
    nothing = Balances(pending=0, available=0, requested=0, paid=0)
    assert promoter_balances(promoter_id=upline.pk) == nothing
    assert promoter_balances(promoter_id=newbie.pk) == nothing
    # Only a sale pays, both levels.
    assert entries(sell(ref=newbie.code)) == {(1, newbie.code): 1000, (2, "UP"): 300}


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
