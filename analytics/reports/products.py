"""Products: best sellers, bought together, stock cover at the recent pace, sell-through, and
keys imported against sold and voided."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Sum

from analytics.models import PairHour
from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import (
    pairs_in,
    product_names,
    products_in,
    sales_by_product,
)
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
from cardpool.models import CardKey, ImportBatch
from orders.followups.selectors import survey_scores_by_product
from orders.stock import with_stock
from riskrules.models import RiskSettings
from shop.models import Product

TOP = 10


def build(ask: Ask) -> Report:
    rollups_refresh()
    p, prev, cur = ask.period, ask.period.previous(), ask.currency
    names = product_names()
    now_sales = products_in(
        p, cur, ("units_paid", "paid_orders", "revenue", "refunded_amount", "units_delivered")
    )
    before = products_in(prev, cur, ("units_paid",))
    best_rows = sorted(
        (
            {
                "product": names.get(pid, f"#{pid}"),
                "units": s["units_paid"],
                "orders": s["paid_orders"],
                "revenue": s["revenue"],
                "refunded": s["refunded_amount"],
                "previous_units": before.get(pid, {}).get("units_paid", 0),
            }
            for pid, s in now_sales.items()
            if s["paid_orders"]
        ),
        key=lambda r: (-r["revenue"], -r["units"], r["product"]),
    )
    best = Table(
        id="best_sellers",
        title="Best sellers",
        columns=[
            Column("product", "Product", TEXT),
            Column("units", "Keys sold"),
            Column("orders", "Paid orders"),
            Column("revenue", "Revenue", MONEY),
            Column("refunded", "Refunded", MONEY),
            Column("previous_units", "Keys sold, previous period"),
        ],
        rows=best_rows,
        currency=cur,
    )
    pairs = Table(
        id="bought_together",
        title=(
            f"Bought together: paid orders whose buyer had paid for the other product in the "
            f"{PairHour.WINDOW_DAYS} days before"
        ),
        columns=[
            Column("first", "Product", TEXT),
            Column("second", "And", TEXT),
            Column("times", "Times"),
        ],
        rows=[
            {"first": names.get(a, f"#{a}"), "second": names.get(b, f"#{b}"), "times": n}
            for a, b, n in pairs_in(p, limit=TOP)
        ],
    )
    forecast_days = RiskSettings.current().forecast_days
    pace_start = ask.now - timedelta(days=forecast_days)
    recent = sales_by_product(pace_start, ask.now + timedelta(hours=1), cur, ("units_paid",))
    imported = dict(
        ImportBatch.objects.filter(created_at__gte=p.start, created_at__lt=p.end)
        .values("product_id")
        .annotate(n=Sum("imported"))
        .values_list("product_id", "n")
    )
    voided = dict(
        CardKey.objects.filter(status=CardKey.Status.VOID)
        .values("product_id")
        .annotate(n=Count("pk"))
        .values_list("product_id", "n")
    )
    stock_rows = []
    key_rows = []
    products = with_stock(
        Product.objects.filter(currency=cur).order_by("sort_order", "name"), now=ask.now
    ).values("pk", "name", "stock")
    for product in products:  # one row per product
        pid = product["pk"]
        per_day = recent.get(pid, {}).get("units_paid", 0) / forecast_days
        sold = now_sales.get(pid, {}).get("units_delivered", 0)
        stock = product["stock"]
        if stock == 0:
            cover = "sold out"
        elif per_day == 0:
            cover = "no recent sales"
        else:
            cover = f"{stock / per_day:.1f}"
        stock_rows.append(
            {
                "product": product["name"],
                "stock": stock,
                "per_day": per_day,
                "cover": cover,
                "sold": sold,
                "sell_through": rate(sold, sold + stock),
            }
        )
        key_rows.append(
            {
                "product": product["name"],
                "imported": imported.get(pid, 0),
                "sold": sold,
                "voided": voided.get(pid, 0),
                "available": stock,
            }
        )
    cover = Table(
        id="stock_cover",
        title=f"Stock cover at the last {forecast_days} days' pace, and sell-through",
        columns=[
            Column("product", "Product", TEXT),
            Column("stock", "Keys free now"),
            Column("per_day", "Sold per day", DECIMAL),
            Column("cover", "Days of stock left", TEXT),
            Column("sold", "Keys delivered in the period"),
            Column("sell_through", "Sell-through", PERCENT),
        ],
        rows=stock_rows,
    )
    keys = Table(
        id="keys",
        title="Keys imported, sold and voided",
        columns=[
            Column("product", "Product", TEXT),
            Column("imported", "Imported in the period"),
            Column("sold", "Delivered in the period"),
            Column("voided", "Voided (all time)"),
            Column("available", "Free now"),
        ],
        rows=key_rows,
    )
    satisfaction = Table(
        id="satisfaction",
        title="Satisfaction survey (1–5), answers given in the period",
        columns=[
            Column("product", "Product", TEXT),
            Column("answers", "Answers"),
            Column("average", "Average score", DECIMAL),
        ],
        rows=[
            {
                "product": row["product__name"],
                "answers": row["answers"],
                "average": Decimal(str(row["average"])).quantize(Decimal("0.01")),
            }
            for row in survey_scores_by_product(start=p.start, end=p.end)
        ],
    )
    charts = [
        Chart(
            id="best_sellers_chart",
            title=f"Revenue by product ({cur})",
            kind="hbar",
            table="best_sellers",
            categories=[r["product"] for r in best_rows[:TOP]],
            series=[series("Revenue", [major(r["revenue"], cur) for r in best_rows[:TOP]])],
        ),
    ]
    return Report(
        slug="products",
        title="Products",
        tables=[best, pairs, cover, keys, satisfaction],
        charts=charts,
        notes=[
            "Sell-through: keys delivered in the period ÷ (those + keys free now).",
            "Keys are voided without a date, so voids are counted over all time.",
        ],
    )
