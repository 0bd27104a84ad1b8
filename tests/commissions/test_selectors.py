"""Commission reads (``commissions/selectors.py``): the next release dates and the earnings
by day, as the selectors return them and as the promoter dashboard shows them."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from commissions.models import LedgerEntry
from commissions.selectors import earnings_by_day, next_releases
from commissions.services import ledger_adjust
from orders.models import Order
from tests.commissions.helpers import dashboard_html, set_conf
from tests.stripe_helpers import refund_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


# --- Next release dates ---------------------------------------------------------------------


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


# --- Earnings by day, and the chart ---------------------------------------------------------


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
