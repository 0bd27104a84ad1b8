"""The top line: today so far against yesterday by the same hour, and what is open now.

Also drawn on the admin index (``analytics.templatetags.analytics_reports``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics import service_data
from analytics.periods import local_midnight, local_today
from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import latency_percentiles, sales_totals
from analytics.tables import PERCENT, TEXT, Column, Figure, Report, Table, change, rate
from core.money import to_decimal_string
from riskrules.models import RiskSettings


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime


def spans(now: datetime) -> tuple[Span, Span]:
    """Today from local midnight to the end of the current hour, and yesterday to the same
    hour (the rollups count whole hours)."""
    today = local_midnight(local_today(now))
    hour_end = timezone.localtime(now).replace(minute=0, second=0, microsecond=0) + timedelta(
        hours=1
    )
    return Span(today, hour_end), Span(today - timedelta(days=1), hour_end - timedelta(days=1))


def _ms(value: int | None) -> str:
    return "—" if value is None else f"{value / 1000:.2f} s"


def top_line_figures(*, currency: str, now: datetime) -> dict[str, Any]:
    """The numbers of the top line, as plain values (the index panel and the report)."""
    rollups_refresh()
    today, yesterday = spans(now)
    t = sales_totals(today.start, today.end, currency)
    y = sales_totals(yesterday.start, yesterday.end, currency)
    threshold_ms = RiskSettings.current().slow_delivery_seconds * 1000
    lat = latency_percentiles(today.start, now + timedelta(seconds=1), within_ms=threshold_ms)
    return {
        "currency": currency,
        "today": t,
        "yesterday": y,
        "success_today": rate(t["delivered_orders"], t["paid_orders"]),
        "success_yesterday": rate(y["delivered_orders"], y["paid_orders"]),
        "latency": lat,
        "threshold_s": threshold_ms // 1000,
        "within_share": rate(lat["within"], lat["n"]),
        "open": service_data.open_now(now=now),
    }


def build(ask: Ask) -> Report:
    f = top_line_figures(currency=ask.currency, now=ask.now)
    t, y, cur = f["today"], f["yesterday"], ask.currency
    money = lambda v: f"{to_decimal_string(v, cur)} {cur}"  # noqa: E731
    pct = lambda v: "—" if v is None else f"{v:.1f}%"  # noqa: E731
    figures = [
        Figure(
            "Revenue today",
            money(t["revenue"]),
            money(y["revenue"]),
            change(t["revenue"], y["revenue"]),
        ),
        Figure("Orders", str(t["orders"]), str(y["orders"]), change(t["orders"], y["orders"])),
        Figure(
            "Paid",
            str(t["paid_orders"]),
            str(y["paid_orders"]),
            change(t["paid_orders"], y["paid_orders"]),
        ),
        Figure(
            "Delivered",
            str(t["delivered_orders"]),
            str(y["delivered_orders"]),
            change(t["delivered_orders"], y["delivered_orders"]),
        ),
        Figure(
            "Refunds",
            f"{t['refunded_orders']} · {money(t['refunded_amount'])}",
            f"{y['refunded_orders']} · {money(y['refunded_amount'])}",
        ),
        Figure("Delivery success", pct(f["success_today"]), pct(f["success_yesterday"])),
    ]
    lat, o = f["latency"], f["open"]
    today_table = Table(
        id="today",
        title="Today so far against yesterday by the same hour",
        columns=[
            Column("figure", "Figure", TEXT),
            Column("today", "Today", TEXT),
            Column("yesterday", "Yesterday", TEXT),
        ],
        rows=[
            {"figure": fig.label, "today": fig.value, "yesterday": fig.previous} for fig in figures
        ],
        currency=cur,
    )
    speed = Table(
        id="speed",
        title="Payment → delivery today",
        columns=[
            Column("deliveries", "Deliveries timed"),
            Column("p50", "p50", TEXT),
            Column("p95", "p95", TEXT),
            Column("p99", "p99", TEXT),
            Column("within", f"Within {f['threshold_s']} s", PERCENT),
        ],
        rows=[
            {
                "deliveries": lat["n"],
                "p50": _ms(lat["p50"]),
                "p95": _ms(lat["p95"]),
                "p99": _ms(lat["p99"]),
                "within": f["within_share"],
            }
        ],
    )
    open_table = Table(
        id="open",
        title="Open now",
        columns=[Column("what", "What", TEXT), Column("count", "Count", TEXT)],
        rows=[
            {"what": "Unpaid orders holding keys", "count": o["holds"]},
            {"what": "Paid orders on hold for review", "count": o["on_hold"]},
            {"what": "Backorders", "count": o["backorders"]},
            {"what": "Open tickets", "count": "—" if o["tickets"] is None else o["tickets"]},
            {"what": "Products low on stock", "count": o["low_stock"]},
            {"what": "Products sold out", "count": o["sold_out"]},
            {"what": "Open alerts", "count": o["alerts"]},
        ],
    )
    notes = [
        "Figures count orders by the hour they were placed, in the shop's time zone; "
        "a refund or a late delivery updates the day the order was placed.",
    ]
    if o["tickets"] is None:
        notes.append("Tickets are not recorded yet: their count appears here once they are.")
    return Report(
        slug="overview",
        title="Top line",
        figures=figures,
        tables=[today_table, speed, open_table],
        notes=notes,
    )
