"""Dates are the shop's: the same UTC instants fall on different local days per ``TIME_ZONE``,
daylight-saving changes included."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.test import override_settings

from analytics.periods import Period
from analytics.reports import Ask, time_of_sale
from tests.analytics.history import placed
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _orders_by_day(first: date, last: date) -> dict[str, str]:
    report = time_of_sale.build(
        Ask(period=Period(first, last), currency="USD", now=_utc("2026-12-01 00:00"))
    )
    return {row[0]: row[1] for row in report.table("by_day").body() if row[1] != "0"}


@pytest.fixture
def two_orders_one_utc_day():
    product = ProductFactory(price=1000)
    placed(_utc("2026-11-10 15:30"), product=product)
    placed(_utc("2026-11-10 16:30"), product=product)


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("UTC", {"2026-11-10": "2"}),
        ("Asia/Shanghai", {"2026-11-10": "1", "2026-11-11": "1"}),  # UTC+8: 23:30 and 00:30
        ("America/Los_Angeles", {"2026-11-10": "2"}),  # UTC−8: 07:30 and 08:30
    ],
)
def test_the_same_instants_on_local_days(two_orders_one_utc_day, zone, days):
    with override_settings(TIME_ZONE=zone):
        assert _orders_by_day(date(2026, 11, 9), date(2026, 11, 12)) == days


def test_daylight_saving_ends_new_york_keeps_the_evening_on_its_day():
    product = ProductFactory(price=1000)
    # 2026-11-01 is the first Sunday of November: clocks go back from 02:00 EDT to 01:00 EST.
    placed(_utc("2026-11-01 05:30"), product=product)  # 01:30 EDT
    placed(_utc("2026-11-01 06:30"), product=product)  # 01:30 EST, an hour later
    placed(_utc("2026-11-02 04:30"), product=product)  # 23:30 EST, still Sunday
    with override_settings(TIME_ZONE="America/New_York"):
        assert _orders_by_day(date(2026, 10, 31), date(2026, 11, 2)) == {"2026-11-01": "3"}
        report = time_of_sale.build(
            Ask(Period(date(2026, 10, 26), date(2026, 11, 1)), "USD", _utc("2026-12-01 00:00"))
        )
        sunday = next(r for r in report.table("heatmap").body() if r[0] == "Sunday")
        assert sunday[1 + 1] == "2" and sunday[1 + 23] == "1"  # 01:00 twice, and 23:00


def test_day_rollups_are_recut_when_the_shop_changes_its_time_zone(two_orders_one_utc_day):
    from analytics.reports import products

    def alpha_units(zone: str, day: date) -> str:
        with override_settings(TIME_ZONE=zone):
            report = products.build(Ask(Period(day, day), "USD", _utc("2026-12-01 00:00")))
            rows = report.table("best_sellers").body()
            return rows[0][1] if rows else "0"

    assert alpha_units("UTC", date(2026, 11, 10)) == "2"
    assert alpha_units("Asia/Shanghai", date(2026, 11, 10)) == "1"  # 23:30 local
    assert alpha_units("Asia/Shanghai", date(2026, 11, 11)) == "1"  # 00:30 local
    assert alpha_units("UTC", date(2026, 11, 11)) == "0"
