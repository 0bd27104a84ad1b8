"""Every report against the hand-built week of ``conftest.py``, whose answers were worked out
by hand: local days across the UTC boundary, refunds, new and returning buyers, channels."""

from __future__ import annotations

import pytest

from analytics.reports import buyers, channels, products, risk, time_of_sale, top_line
from analytics.reports.top_line import top_line_figures
from orders.followups.models import SurveyResponse
from orders.models import Order, OrderStatus
from orders.support.models import Ticket
from tests.analytics.history import local
from tests.factories import OrderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def cells(report, table_id: str) -> list[list[str]]:
    return report.table(table_id).body()


def column(report, table_id: str, label: str) -> list[str]:
    table = report.table(table_id)
    i = table.header().index(label)
    return [row[i] for row in table.body()]


def test_time_by_local_day_across_the_utc_boundary(week):
    report = time_of_sale.build(week.ask())
    by_day = {row[0]: row[1:6] for row in cells(report, "by_day")}
    # day: orders, paid, revenue, refunded, net
    assert by_day == {
        "2026-11-09": ["0", "0", "0.00", "0.00", "0.00"],
        "2026-11-10": ["1", "1", "10.00", "0.00", "10.00"],  # #1 only: #2 is local 11-11
        "2026-11-11": ["2", "2", "60.00", "10.00", "50.00"],  # #2 (refunded) and #3
        "2026-11-12": ["0", "0", "0.00", "0.00", "0.00"],
        "2026-11-13": ["1", "0", "0.00", "0.00", "0.00"],  # #4, never paid
        "2026-11-14": ["1", "1", "10.00", "0.00", "10.00"],
        "2026-11-15": ["1", "1", "25.00", "0.00", "25.00"],
    }
    assert column(report, "by_day", "Previous period's day")[3] == "2026-11-05"
    assert column(report, "by_day", "Its revenue (USD)")[3] == "10.00"  # #6, a week before
    figures = {f.label: (f.value, f.previous, f.change) for f in report.figures}
    assert figures["Revenue"] == ("105.00 USD", "10.00 USD", "+950%")
    assert figures["Orders"] == ("6", "1", "+500%")


def test_time_heat_map_and_peak_in_words(week):
    report = time_of_sale.build(week.ask())
    heat = {row[0]: row[1:] for row in cells(report, "heatmap")}
    assert heat["Tuesday"][23] == "1"  # #1
    assert heat["Wednesday"][0] == "2"  # #2 and #3, local midnight hour
    assert heat["Saturday"][22] == "1" and heat["Sunday"][21] == "1"
    assert sum(int(v) for row in heat.values() for v in row) == 5  # paid orders
    assert report.words[0] == "Peak: Wednesdays 00:00–01:00, 2 paid orders (40.0% of the period's)."
    assert "Busiest day of the week: Wednesday (40.0%)." in report.words


def test_buyers_new_returning_repurchase_value_and_top(week):
    report = buyers.build(week.ask())
    assert cells(report, "new_returning") == [
        [
            "New (their first paid order)",
            "3",
            "60.0",
            "30.00",
            "1",
        ],  # alice, bob, dave; erin before
        ["Returning", "2", "40.0", "75.00", "0"],  # alice's Beta×2, bob's Beta
    ]
    # First payments in the week: alice, bob, dave; alice came back after a day, bob after
    # 4.9 days, dave not: 2 of 3 within 7 days and within 30.
    assert cells(report, "repurchase") == [
        ["7 days", "3", "2", "66.7"],
        ["30 days", "3", "2", "66.7"],
    ]
    value = {row[0]: row[1] for row in cells(report, "order_value")}
    assert value == {
        "under 5 USD": "0",
        "5–10 USD": "0",
        "10–20 USD": "3",
        "20–50 USD": "1",
        "50–100 USD": "1",
        "100–200 USD": "0",
        "200–500 USD": "0",
        "500 and over USD": "0",
    }
    assert cells(report, "top_buyers") == [
        ["a•••@e•••.com", "2", "60.00", "0.00"],
        ["b•••@e•••.com", "2", "35.00", "10.00"],
        ["d•••@e•••.com", "1", "10.00", "0.00"],
    ]
    assert "alice" not in str(report.tables)


def test_repurchase_waits_until_buyers_had_the_time(week):
    report = buyers.build(week.ask(now="2026-11-25 12:00"))  # 30 days have not passed yet
    assert cells(report, "repurchase") == [["7 days", "3", "2", "66.7"], ["30 days", "0", "0", "—"]]


def test_products_best_sellers_pairs_cover_and_keys(week):
    report = products.build(week.ask())
    assert cells(report, "best_sellers") == [
        ["Beta", "3", "2", "75.00", "0.00", "0"],
        ["Alpha", "3", "3", "30.00", "10.00", "1"],
    ]
    assert cells(report, "bought_together") == [["Alpha", "Beta", "2"]]  # alice and bob
    keys = {row[0]: row[1:] for row in cells(report, "keys")}
    assert keys["Alpha"] == ["0", "3", "0", "0"] and keys["Beta"] == ["0", "2", "0", "0"]
    cover = {row[0]: row[1:] for row in cells(report, "stock_cover")}
    assert cover["Alpha"][2] == "sold out" and cover["Alpha"][4] == "100.0"


def test_products_satisfaction_counts_the_answers_given_in_the_period(week):
    """Answers by the shop's local day: 23:30 on the period's last day counts, 00:30 the day
    after does not."""
    answers = [
        (week.orders[1], week.alpha, 5, "2026-11-12 10:00"),
        (week.orders[2], week.alpha, 2, "2026-11-15 23:30"),
        (week.orders[3], week.beta, 4, "2026-11-16 00:30"),
    ]
    for order, product, score, when in answers:
        row = SurveyResponse.objects.create(order=order, product=product, score=score)
        SurveyResponse.objects.filter(pk=row.pk).update(created_at=local(when))
    report = products.build(week.ask())
    assert cells(report, "satisfaction") == [["Alpha", "2", "3.5"]]


def test_channels_sources_funnel_and_promoter_roi(week):
    report = channels.build(week.ask())
    assert cells(report, "sources") == [
        ["Promoter", "P1", "1", "16.7", "1", "50.00", "0"],
        ["Direct", "—", "4", "66.7", "3", "45.00", "0"],
        ["utm_source", "newsletter", "1", "16.7", "1", "10.00", "0"],
    ]
    assert cells(report, "funnel") == [
        ["Product page views", "20", "—"],
        ["Orders placed", "6", "30.0"],
        ["Paid", "5", "83.3"],
        ["Delivered", "4", "80.0"],
    ]
    assert cells(report, "promoter_roi") == [["P1", "1", "50.00", "0.00", "5.00", "45.00", "10.0"]]


def test_risk_rates_rules_failures_and_speed(week):
    ticket = Ticket.objects.create(ticket_no="T-1", order=week.orders[1], kind="key_missing")
    Ticket.objects.filter(pk=ticket.pk).update(created_at=local("2026-11-12 10:00"))
    Ticket.objects.create(ticket_no="T-2", order=week.orders[1], kind="other")
    report = risk.build(week.ask())
    figures = {f.label: f.value for f in report.figures}
    assert figures == {
        "Refund rate (orders)": "20.0%",
        "Refunded share of revenue": "9.5%",
        "Dispute rate": "20.0%",
        '"Key missing" reports': "1",
    }
    assert cells(report, "holds_blocks") == [
        ["Velocity", "2", "1", "0"],
        ["Blocklist", "1", "0", "0"],
    ]
    failures = {row[1]: row[2] for row in cells(report, "failed_deliveries")}
    assert failures["Paid orders still waiting for keys (backordered)"] == "1"  # #7
    assert (
        failures["Delivered orders whose email is not recorded as sent (placed over 10 min ago)"]
        == "4"
    )
    # Latencies 0.4, 0.5, 0.5 and 12 s: the median is in the 0.4–0.5 s bucket, p95 and p99
    # in the 10–15 s one.
    assert cells(report, "delivery_speed")[0] == [
        "This period",
        "4",
        "≤ 0.50 s",
        "≤ 15.00 s",
        "≤ 15.00 s",
        "75.0",
    ]


def test_top_line_today_against_yesterday_by_the_same_hour(week):
    now = local("2026-11-15 21:30")
    OrderFactory(product=week.alpha, reserve=False, hold_expires_at=local("2026-11-15 21:40"))
    f = top_line_figures(currency="USD", now=now)
    assert f["today"]["orders"] == 1 and f["today"]["revenue"] == 2500  # #7 (the hold: real now)
    # Yesterday up to 22:00: #5 at 22:15 is not counted yet.
    assert f["yesterday"]["orders"] == 0
    assert f["success_today"] == 0.0
    assert f["open"]["backorders"] == 1 and f["open"]["holds"] == 1
    assert f["open"]["tickets"] == 0
    report = top_line.build(week.ask(now="2026-11-15 21:30"))
    assert cells(report, "today")[0] == ["Revenue today", "25.00 USD", "0.00 USD"]


def test_a_refund_today_changes_the_day_the_order_was_placed(week):
    before = time_of_sale.build(week.ask())
    assert cells(before, "by_day")[5][3:6] == ["10.00", "0.00", "10.00"]  # 11-14: #5
    Order.objects.filter(pk=week.orders[5].pk).update(
        refunded_amount=400, status=OrderStatus.DELIVERED
    )
    after = time_of_sale.build(week.ask())
    assert cells(after, "by_day")[5][3:6] == ["10.00", "4.00", "6.00"]
    assert cells(after, "by_day")[6] == cells(before, "by_day")[6]  # today's row unchanged
