"""Channels: where orders come from (a promoter, a ``utm_source`` or referring site, or
direct), the funnel product view → order → paid → delivered, and the promoters' ROI."""

from __future__ import annotations

from django.db.models import Sum

from analytics.models import ChannelHour, ProductViewHour
from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import channels_in, product_names, products_in, sales_totals
from analytics.tables import (
    DECIMAL,
    MONEY,
    PERCENT,
    TEXT,
    Chart,
    Column,
    Report,
    Table,
    major,
    rate,
    series,
)

KIND_LABELS = dict(ChannelHour.Kind.choices)


def _views(ask: Ask) -> dict[int, int]:
    p = ask.period
    rows = (
        ProductViewHour.objects.filter(hour__gte=p.start, hour__lt=p.end)
        .values("product_id")
        .annotate(n=Sum("views"))
    )
    return {r["product_id"]: int(r["n"] or 0) for r in rows}


def build(ask: Ask) -> Report:
    rollups_refresh()
    p, prev, cur = ask.period, ask.period.previous(), ask.currency
    now_rows = channels_in(p.start, p.end, cur)
    before = {(r["kind"], r["value"]): r for r in channels_in(prev.start, prev.end, cur)}
    total_orders = sum(r["orders"] for r in now_rows)
    source_rows = [
        {
            "kind": KIND_LABELS.get(r["kind"], r["kind"]),
            "value": r["value"] or "—",
            "orders": r["orders"],
            "share": rate(r["orders"], total_orders),
            "paid": r["paid_orders"],
            "revenue": r["revenue"],
            "previous_orders": before.get((r["kind"], r["value"]), {}).get("orders", 0),
        }
        for r in now_rows
    ]
    sources = Table(
        id="sources",
        title="Where orders come from",
        columns=[
            Column("kind", "Channel", TEXT),
            Column("value", "Source", TEXT),
            Column("orders", "Orders"),
            Column("share", "Share of orders", PERCENT),
            Column("paid", "Paid"),
            Column("revenue", "Revenue", MONEY),
            Column("previous_orders", "Orders, previous period"),
        ],
        rows=source_rows,
        currency=cur,
    )
    by_kind: dict[str, int] = {}
    for r in now_rows:
        label = KIND_LABELS.get(r["kind"], r["kind"])
        by_kind[label] = by_kind.get(label, 0) + r["orders"]

    views = _views(ask)
    names = product_names()
    t = sales_totals(p.start, p.end, cur, ("orders", "paid_orders", "delivered_orders"))
    all_views = sum(views.values())
    steps = [
        ("Product page views", all_views),
        ("Orders placed", t["orders"]),
        ("Paid", t["paid_orders"]),
        ("Delivered", t["delivered_orders"]),
    ]
    funnel = Table(
        id="funnel",
        title="Funnel: product view → order → paid → delivered",
        columns=[
            Column("step", "Step", TEXT),
            Column("count", "Count"),
            Column("of_previous", "Of the step before", PERCENT),
        ],
        rows=[
            {
                "step": name,
                "count": n,
                "of_previous": rate(n, steps[i - 1][1]) if i else None,
            }
            for i, (name, n) in enumerate(steps)
        ],
    )
    per_product = products_in(p, cur, ("orders", "paid_orders", "delivered_orders"))
    funnel_products = Table(
        id="funnel_by_product",
        title="Funnel by product",
        columns=[
            Column("product", "Product", TEXT),
            Column("views", "Views"),
            Column("orders", "Orders"),
            Column("paid", "Paid"),
            Column("delivered", "Delivered"),
            Column("conversion", "Paid per view", PERCENT),
        ],
        rows=sorted(
            (
                {
                    "product": names.get(pid, f"#{pid}"),
                    "views": views.get(pid, 0),
                    "orders": per_product.get(pid, {}).get("orders", 0),
                    "paid": per_product.get(pid, {}).get("paid_orders", 0),
                    "delivered": per_product.get(pid, {}).get("delivered_orders", 0),
                    "conversion": rate(
                        per_product.get(pid, {}).get("paid_orders", 0), views.get(pid, 0)
                    ),
                }
                for pid in set(views) | set(per_product)
                if pid in names
            ),
            key=lambda r: (-r["views"], -r["orders"], r["product"]),
        ),
    )
    roi_rows = sorted(
        (
            {
                "promoter": r["value"],
                "orders": r["orders"],
                "revenue": r["revenue"],
                "refunded": r["refunded_amount"],
                "commission": r["commission"],
                "net": r["revenue"] - r["refunded_amount"] - r["commission"],
                "per_commission": (
                    (r["revenue"] - r["refunded_amount"]) / r["commission"]
                    if r["commission"]
                    else None
                ),
            }
            for r in now_rows
            if r["kind"] == ChannelHour.Kind.PROMOTER
        ),
        key=lambda r: (-r["revenue"], r["promoter"]),
    )
    roi = Table(
        id="promoter_roi",
        title="Promoters: revenue against commission",
        columns=[
            Column("promoter", "Promoter", TEXT),
            Column("orders", "Orders"),
            Column("revenue", "Revenue", MONEY),
            Column("refunded", "Refunded", MONEY),
            Column("commission", "Commission (net of clawbacks)", MONEY),
            Column("net", "Revenue after refunds and commission", MONEY),
            Column("per_commission", "Revenue per 1 of commission", DECIMAL),
        ],
        rows=roi_rows,
        currency=cur,
    )
    charts = [
        Chart(
            id="sources_chart",
            title="Orders by channel",
            kind="pie",
            table="sources",
            categories=list(by_kind),
            series=[series("Orders", list(by_kind.values()))],
        ),
        Chart(
            id="funnel_chart",
            title="Funnel",
            kind="funnel",
            table="funnel",
            categories=[s[0] for s in steps],
            series=[series("Count", [s[1] for s in steps])],
        ),
        Chart(
            id="promoter_roi_chart",
            title=f"Promoters: revenue and commission ({cur})",
            kind="bar",
            table="promoter_roi",
            categories=[r["promoter"] for r in roi_rows],
            series=[
                series("Revenue", [major(r["revenue"], cur) for r in roi_rows]),
                series("Commission", [major(r["commission"], cur) for r in roi_rows]),
            ],
        ),
    ]
    return Report(
        slug="channels",
        title="Channels",
        tables=[sources, funnel, funnel_products, roi],
        charts=charts,
        notes=[
            "A promoter's order is the promoter's whatever site the visit came from; other "
            "orders count under the visit's utm_source, else its referring site, else direct.",
            "Views are product page loads; orders count by the hour they were placed.",
        ],
    )
