"""Buyers: new against returning, repurchase within 7 and 30 days, the order-value
distribution and the top buyers (emails masked)."""

from __future__ import annotations

from analytics.models import VALUE_BAND_FIELDS, VALUE_BANDS
from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import repurchase, sales_by_day, sales_totals, top_buyers
from analytics.tables import (
    MONEY,
    PERCENT,
    TEXT,
    Chart,
    Column,
    Figure,
    Report,
    Table,
    change,
    rate,
    series,
)
from core.masking import mask_email
from core.money import to_decimal_string

TOP_BUYERS = 10


def band_labels(currency: str) -> list[str]:
    bounds = list(VALUE_BANDS)
    labels = [f"under {bounds[0]}"]
    labels += [f"{lo}–{hi}" for lo, hi in zip(bounds, bounds[1:], strict=False)]
    labels.append(f"{bounds[-1]} and over")
    return [f"{label} {currency}" for label in labels]


def _top_buyers(ask: Ask) -> list[dict]:
    return [
        {
            "buyer": mask_email(r["identity"]),
            "orders": r["paid_orders"],
            "revenue": r["revenue"],
            "refunded": r["refunded_amount"],
        }
        for r in top_buyers(ask.period.start, ask.period.end, ask.currency, limit=TOP_BUYERS)
    ]


def build(ask: Ask) -> Report:
    rollups_refresh()
    p, prev, cur = ask.period, ask.period.previous(), ask.currency
    t, b = sales_totals(p.start, p.end, cur), sales_totals(prev.start, prev.end, cur)
    returning = t["paid_orders"] - t["new_buyer_orders"]
    split = Table(
        id="new_returning",
        title="New and returning buyers' paid orders",
        columns=[
            Column("who", "Buyers", TEXT),
            Column("orders", "Paid orders"),
            Column("share", "Share of paid orders", PERCENT),
            Column("revenue", "Revenue", MONEY),
            Column("previous", "Previous period's paid orders"),
        ],
        rows=[
            {
                "who": "New (their first paid order)",
                "orders": t["new_buyer_orders"],
                "share": rate(t["new_buyer_orders"], t["paid_orders"]),
                "revenue": t["new_buyer_revenue"],
                "previous": b["new_buyer_orders"],
            },
            {
                "who": "Returning",
                "orders": returning,
                "share": rate(returning, t["paid_orders"]),
                "revenue": t["revenue"] - t["new_buyer_revenue"],
                "previous": b["paid_orders"] - b["new_buyer_orders"],
            },
        ],
        currency=cur,
    )
    days = sales_by_day(p.start, p.end, cur, ("paid_orders", "new_buyer_orders"))
    day_rows = [
        {
            "day": day.isoformat(),
            "new": days.get(day, {}).get("new_buyer_orders", 0),
            "returning": days.get(day, {}).get("paid_orders", 0)
            - days.get(day, {}).get("new_buyer_orders", 0),
        }
        for day in p.dates()
    ]
    by_day = Table(
        id="new_returning_by_day",
        title="New and returning buyers' paid orders by day",
        columns=[
            Column("day", "Day", TEXT),
            Column("new", "New"),
            Column("returning", "Returning"),
        ],
        rows=day_rows,
    )
    rep = repurchase(p.start, p.end, now=ask.now)
    again = Table(
        id="repurchase",
        title="Bought again: buyers whose first paid order fell in the period",
        columns=[
            Column("window", "Within", TEXT),
            Column("eligible", "New buyers at least that long ago"),
            Column("back", "Paid again within it"),
            Column("rate", "Repurchase rate", PERCENT),
        ],
        rows=[
            {
                "window": f"{d} days",
                "eligible": rep[f"eligible_{d}"],
                "back": rep[f"back_{d}"],
                "rate": rate(rep[f"back_{d}"], rep[f"eligible_{d}"]),
            }
            for d in (7, 30)
        ],
    )
    labels = band_labels(cur)
    value = Table(
        id="order_value",
        title="Paid orders by value",
        columns=[
            Column("band", "Order value", TEXT),
            Column("orders", "Paid orders"),
            Column("share", "Share", PERCENT),
        ],
        rows=[
            {"band": labels[i], "orders": t[f], "share": rate(t[f], t["paid_orders"])}
            for i, f in enumerate(VALUE_BAND_FIELDS)
        ],
    )
    top = Table(
        id="top_buyers",
        title=f"Top {TOP_BUYERS} of the period's buyers, by all they ever paid",
        columns=[
            Column("buyer", "Buyer (masked)", TEXT),
            Column("orders", "Paid orders, all time"),
            Column("revenue", "Paid, all time", MONEY),
            Column("refunded", "Refunded, all time", MONEY),
        ],
        rows=_top_buyers(ask),
        currency=cur,
    )
    money = lambda v: f"{to_decimal_string(v, cur)} {cur}"  # noqa: E731
    figures = [
        Figure(
            "New buyers",
            str(t["new_buyer_orders"]),
            str(b["new_buyer_orders"]),
            change(t["new_buyer_orders"], b["new_buyer_orders"]),
        ),
        Figure(
            "Orders from returning buyers",
            str(returning),
            str(b["paid_orders"] - b["new_buyer_orders"]),
            change(returning, b["paid_orders"] - b["new_buyer_orders"]),
        ),
        Figure(
            "Average paid order",
            money(t["revenue"] // t["paid_orders"]) if t["paid_orders"] else "—",
            money(b["revenue"] // b["paid_orders"]) if b["paid_orders"] else "—",
        ),
    ]
    charts = [
        Chart(
            id="new_returning_chart",
            title="New and returning buyers' paid orders by day",
            kind="stacked_bar",
            table="new_returning_by_day",
            categories=[r["day"] for r in day_rows],
            series=[
                series("New", [r["new"] for r in day_rows]),
                series("Returning", [r["returning"] for r in day_rows]),
            ],
        ),
        Chart(
            id="order_value_chart",
            title="Paid orders by value",
            kind="bar",
            table="order_value",
            categories=labels,
            series=[series("Paid orders", [r["orders"] for r in value.rows])],
        ),
    ]
    return Report(
        slug="buyers",
        title="Buyers",
        figures=figures,
        tables=[split, by_day, again, value, top],
        charts=charts,
        notes=[
            "A buyer is one email identity (case, +tags and Gmail dots folded).",
            "Repurchase counts only buyers whose first payment is at least 7 (or 30) days old.",
        ],
    )
