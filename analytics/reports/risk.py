"""Risk and service: refund and dispute rates, holds and blocks by rule, failed deliveries by
channel, payment → delivery speed, and "key missing" reports once tickets exist."""

from __future__ import annotations

from django.db.models import Count

from analytics import service_data
from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import latency_histogram, sales_by_day, sales_totals
from analytics.tables import (
    MONEY,
    PERCENT,
    TEXT,
    Chart,
    Column,
    Figure,
    Report,
    Table,
    rate,
    series,
)
from riskrules.models import RiskDecision, RiskSettings, RuleAction


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1f}%"


def _upto(v, n: int) -> str:
    """A percentile read from the histogram: at most the bucket's upper edge."""
    if not n:
        return "—"
    return "over 120 s" if v is None else f"≤ {v / 1000:.2f} s"


def build(ask: Ask) -> Report:
    rollups_refresh()
    p, prev, cur = ask.period, ask.period.previous(), ask.currency
    t, b = sales_totals(p.start, p.end, cur), sales_totals(prev.start, prev.end, cur)
    figures = [
        Figure(
            "Refund rate (orders)",
            _pct(rate(t["refunded_orders"], t["paid_orders"])),
            _pct(rate(b["refunded_orders"], b["paid_orders"])),
        ),
        Figure(
            "Refunded share of revenue",
            _pct(rate(t["refunded_amount"], t["revenue"])),
            _pct(rate(b["refunded_amount"], b["revenue"])),
        ),
        Figure(
            "Dispute rate",
            _pct(rate(t["disputed_orders"], t["paid_orders"])),
            _pct(rate(b["disputed_orders"], b["paid_orders"])),
        ),
    ]
    days = sales_by_day(
        p.start,
        p.end,
        cur,
        ("paid_orders", "refunded_orders", "refunded_amount", "disputed_orders"),
    )
    day_rows = []
    for day in p.dates():
        d = days.get(day, {})
        day_rows.append(
            {
                "day": day.isoformat(),
                "paid": d.get("paid_orders", 0),
                "refunded": d.get("refunded_orders", 0),
                "refunded_amount": d.get("refunded_amount", 0),
                "disputed": d.get("disputed_orders", 0),
                "refund_rate": rate(d.get("refunded_orders", 0), d.get("paid_orders", 0)),
                "dispute_rate": rate(d.get("disputed_orders", 0), d.get("paid_orders", 0)),
            }
        )
    rates = Table(
        id="refunds_disputes",
        title="Refunds and disputes by the day the order was placed",
        columns=[
            Column("day", "Day", TEXT),
            Column("paid", "Paid orders"),
            Column("refunded", "Refunded orders"),
            Column("refunded_amount", "Refunded", MONEY),
            Column("refund_rate", "Refund rate", PERCENT),
            Column("disputed", "Disputed orders"),
            Column("dispute_rate", "Dispute rate", PERCENT),
        ],
        rows=day_rows,
        currency=cur,
    )
    decisions = (
        RiskDecision.objects.filter(
            created_at__gte=p.start,
            created_at__lt=p.end,
            outcome__in=[RuleAction.BLOCK, RuleAction.HOLD, RuleAction.FLAG],
        )
        .values("rule_name", "outcome")
        .annotate(n=Count("pk"))
        .order_by("rule_name", "outcome")
    )
    by_rule: dict[str, dict] = {}
    for d in decisions:  # one row per rule and outcome
        row = by_rule.setdefault(
            d["rule_name"], {"rule": d["rule_name"], "block": 0, "hold": 0, "flag": 0}
        )
        row[d["outcome"]] = d["n"]
    rule_rows = sorted(by_rule.values(), key=lambda r: (-(r["block"] + r["hold"]), r["rule"]))
    rules = Table(
        id="holds_blocks",
        title="Blocks, holds and flags by rule",
        columns=[
            Column("rule", "Rule", TEXT),
            Column("block", "Blocked checkouts"),
            Column("hold", "Held orders"),
            Column("flag", "Flagged orders"),
        ],
        rows=rule_rows,
    )
    failures = Table(
        id="failed_deliveries",
        title="Failed deliveries by channel",
        columns=[
            Column("channel", "Channel", TEXT),
            Column("what", "What failed", TEXT),
            Column("failed", "Count"),
        ],
        rows=service_data.delivery_failures(p.start, p.end, now=ask.now),
        note="From the outbox (channels it gave up on), the payment inbox, backorders and "
        "deliveries whose email is not recorded as sent.",
    )
    threshold_ms = RiskSettings.current().slow_delivery_seconds * 1000
    lat = latency_histogram(p.start, p.end, within_ms=threshold_ms)
    lat_before = latency_histogram(prev.start, prev.end, within_ms=threshold_ms)
    speed = Table(
        id="delivery_speed",
        title="Payment → delivery, of the orders placed in the period",
        columns=[
            Column("period", "Period", TEXT),
            Column("n", "Deliveries timed"),
            Column("p50", "p50", TEXT),
            Column("p95", "p95", TEXT),
            Column("p99", "p99", TEXT),
            Column("within", f"Within {threshold_ms // 1000} s", PERCENT),
        ],
        rows=[
            {
                "period": label,
                "n": x["n"],
                "p50": _upto(x["p50"], x["n"]),
                "p95": _upto(x["p95"], x["n"]),
                "p99": _upto(x["p99"], x["n"]),
                "within": rate(x["within"], x["n"]),
            }
            for label, x in (("This period", lat), ("Previous period", lat_before))
        ],
    )
    figures.append(
        Figure('"Key missing" reports', str(service_data.key_missing_reports(p.start, p.end)))
    )
    charts = [
        Chart(
            id="refunds_chart",
            title="Refund and dispute rate by day (%)",
            kind="line",
            table="refunds_disputes",
            categories=[r["day"] for r in day_rows],
            series=[
                series("Refund rate", [r["refund_rate"] for r in day_rows]),
                series("Dispute rate", [r["dispute_rate"] for r in day_rows]),
            ],
        ),
        Chart(
            id="holds_blocks_chart",
            title="Blocks and holds by rule",
            kind="stacked_bar",
            table="holds_blocks",
            categories=[r["rule"] for r in rule_rows],
            series=[
                series("Blocked", [r["block"] for r in rule_rows]),
                series("Held", [r["hold"] for r in rule_rows]),
                series("Flagged", [r["flag"] for r in rule_rows]),
            ],
        ),
    ]
    return Report(
        slug="risk",
        title="Risk and service",
        figures=figures,
        tables=[rates, rules, failures, speed],
        charts=charts,
    )
