"""The hand-built week every report test reads (shop time zone Asia/Shanghai, UTC+8).

Period: Monday 2026-11-09 to Sunday 2026-11-15; the previous period 2026-11-02 to 11-08.
Orders (local time; Alpha costs 10.00 USD, Beta 25.00):

  #1 Tue 11-10 23:30 Alpha  alice  paid, delivered in 0.4 s          (UTC: 11-10 15:30)
  #2 Wed 11-11 00:30 Alpha  bob    paid, delivered in 12 s, refunded (UTC: 11-10 16:30)
  #3 Wed 11-11 00:45 Beta×2 alice  paid, delivered, promoter P1, commission 5.00
  #4 Fri 11-13 10:00 Beta   carol  unpaid (expired)
  #5 Sat 11-14 22:15 Alpha  dave   paid, delivered, disputed, utm_source=newsletter
  #6 Thu 11-05 12:00 Alpha  erin   paid, delivered, referred by forum.example (previous period)
  #7 Sun 11-15 21:00 Beta   bob    paid, backordered (no keys yet)

#1 and #2 fall on the same UTC day but on two local days: the time-zone boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.test import override_settings

from analytics.periods import Period
from analytics.reports import Ask
from analytics.sources import product_view_record
from orders.models import Order, OrderStatus
from riskrules.models import RiskDecision, RuleAction
from tests.analytics.history import local, placed, promoter
from tests.factories import ProductFactory

ZONE = "Asia/Shanghai"
WEEK = Period(date(2026, 11, 9), date(2026, 11, 15))


@dataclass
class Week:
    alpha: object
    beta: object
    orders: dict[int, Order]

    def ask(self, now: str = "2026-12-20 12:00", period: Period = WEEK) -> Ask:
        return Ask(period=period, currency="USD", now=local(now))


@pytest.fixture
def shop_zone():
    with override_settings(TIME_ZONE=ZONE):
        yield


@pytest.fixture
def week(shop_zone) -> Week:
    alpha = ProductFactory(name="Alpha", slug="alpha", price=1000)
    beta = ProductFactory(name="Beta", slug="beta", price=2500)
    p1 = promoter("P1")
    o = {
        1: placed("2026-11-10 23:30", product=alpha, email="alice@example.com", latency_ms=400),
        2: placed(
            "2026-11-11 00:30",
            product=alpha,
            email="bob@example.com",
            latency_ms=12_000,
            refunded=1000,
        ),
        3: placed(
            "2026-11-11 00:45",
            product=beta,
            quantity=2,
            email="alice@example.com",
            by=p1,
            commission=500,
        ),
        4: placed("2026-11-13 10:00", product=beta, email="carol@example.com", paid=False),
        5: placed(
            "2026-11-14 22:15",
            product=alpha,
            email="dave@example.com",
            disputed=True,
            source=("utm", "newsletter"),
        ),
        6: placed(
            "2026-11-05 12:00",
            product=alpha,
            email="erin@example.com",
            source=("referrer", "forum.example"),
        ),
        7: placed(
            "2026-11-15 21:00",
            product=beta,
            email="bob@example.com",
            delivered=False,
            status=OrderStatus.BACKORDERED,
        ),
    }
    for i in range(20):  # views in the week, spread over its days
        product_view_record(
            slug="alpha" if i % 2 else "beta",
            now=local("2026-11-10 12:00") + timedelta(hours=5 * i),
        )
    for _ in range(5):  # and in the week before
        product_view_record(slug="alpha", now=local("2026-11-03 12:00"))
    decisions = [
        ("Velocity", RuleAction.BLOCK, "2026-11-10 09:00"),
        ("Velocity", RuleAction.BLOCK, "2026-11-12 09:00"),
        ("Velocity", RuleAction.HOLD, "2026-11-12 10:00"),
        ("Blocklist", RuleAction.BLOCK, "2026-11-15 23:59"),
        ("Blocklist", RuleAction.BLOCK, "2026-11-16 00:01"),  # the next week: not counted
    ]
    for name, outcome, when in decisions:
        d = RiskDecision.objects.create(rule_name=name, rule_kind="velocity", outcome=outcome)
        RiskDecision.objects.filter(pk=d.pk).update(created_at=local(when))
    return Week(alpha=alpha, beta=beta, orders=o)
