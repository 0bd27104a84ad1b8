"""Reads over the rollups and the few source tables the reports need, all aggregated in SQL.

Everything here is bounded by the number of buckets in a range (hours × products, hours ×
channels) or by an indexed range of rows, never by a loop over orders in Python.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDate,
)

from analytics.models import (
    LATENCY_EDGES_MS,
    VALUE_BAND_FIELDS,
    BuyerSummary,
    ChannelHour,
    LatencyHour,
    PairDay,
    SalesDay,
    SalesHour,
    ShopHour,
)
from analytics.periods import Period, shop_tz
from analytics.rollups import SALES_SUMS as ROLLED_SUMS
from orders.models import Delivery
from shop.models import Product

SALES_SUMS = (*ROLLED_SUMS, *VALUE_BAND_FIELDS)
CHANNEL_SUMS = (
    "orders",
    "paid_orders",
    "delivered_orders",
    "revenue",
    "refunded_amount",
    "commission",
)


def _sums(names) -> dict[str, Any]:
    return {name: Sum(name) for name in names}


def _clean(row: dict[str, Any], names) -> dict[str, Any]:
    return {**row, **{n: int(row.get(n) or 0) for n in names}}


def shop_in(start: datetime, end: datetime, currency: str) -> QuerySet[ShopHour]:
    return ShopHour.objects.filter(hour__gte=start, hour__lt=end, currency=currency)


def sales_totals(
    start: datetime, end: datetime, currency: str, fields=SALES_SUMS
) -> dict[str, int]:
    return _clean(shop_in(start, end, currency).aggregate(**_sums(fields)), fields)


def sales_by_day(
    start: datetime, end: datetime, currency: str, fields=SALES_SUMS
) -> dict[Any, dict[str, int]]:
    """Shop-wide figures per local day (only the ``fields`` asked for)."""
    rows = (
        shop_in(start, end, currency)
        .annotate(day=TruncDate("hour", tzinfo=shop_tz()))
        .values("day")
        .annotate(**_sums(fields))
        .order_by("day")
    )
    return {row["day"]: _clean(row, fields) for row in rows}


def sales_by_product(
    start: datetime, end: datetime, currency: str, fields=SALES_SUMS
) -> dict[int, dict[str, int]]:
    rows = (
        SalesHour.objects.filter(hour__gte=start, hour__lt=end, currency=currency)
        .values("product_id")
        .annotate(**_sums(fields))
    )
    return {row["product_id"]: _clean(row, fields) for row in rows}


def paid_by_hour_of_week(start: datetime, end: datetime, currency: str) -> dict[tuple, int]:
    """Paid orders per (ISO weekday 1–7, local hour 0–23)."""
    tz = shop_tz()
    rows = (
        shop_in(start, end, currency)
        .filter(paid_orders__gt=0)
        .annotate(
            weekday=ExtractIsoWeekDay("hour", tzinfo=tz), local_hour=ExtractHour("hour", tzinfo=tz)
        )
        .values("weekday", "local_hour")
        .annotate(paid=Sum("paid_orders"))
    )
    return {(row["weekday"], row["local_hour"]): int(row["paid"] or 0) for row in rows}


def channels_in(start: datetime, end: datetime, currency: str) -> list[dict[str, Any]]:
    rows = (
        ChannelHour.objects.filter(hour__gte=start, hour__lt=end, currency=currency)
        .values("kind", "value")
        .annotate(**_sums(CHANNEL_SUMS))
        .order_by("-revenue", "-orders", "kind", "value")
    )
    return [_clean(row, CHANNEL_SUMS) for row in rows]


def currencies_seen() -> list[str]:
    """Currencies with sales, most paid orders first; else the catalog's."""
    rows = (
        ShopHour.objects.values("currency")
        .annotate(n=Sum("paid_orders"))
        .order_by("-n", "currency")
    )
    found = [row["currency"] for row in rows]
    if not found:
        found = list(
            Product.objects.values_list("currency", flat=True).distinct().order_by("currency")
        )
    return found or ["USD"]


def product_names() -> dict[int, str]:
    return dict(Product.objects.values_list("pk", "name"))


def repurchase(start: datetime, end: datetime, *, now: datetime) -> dict[str, int]:
    """Buyers whose first paid order was placed in the range; of those placed at least N days
    ago (so they had N days to come back), how many paid again within N days."""
    out: dict[str, int] = {}
    for days in (7, 30):
        cutoff = min(end, now - timedelta(days=days))
        agg = ShopHour.objects.filter(hour__gte=start, hour__lt=cutoff).aggregate(
            eligible=Sum("new_buyer_orders"), back=Sum(f"repeat_{days}")
        )
        out[f"eligible_{days}"] = int(agg["eligible"] or 0)
        out[f"back_{days}"] = int(agg["back"] or 0)
    return out


def top_buyers(
    start: datetime, end: datetime, currency: str, *, limit: int
) -> list[dict[str, Any]]:
    """The buyers of the range (paid before its end and after its start) with the most paid
    over their lifetime: one index scan down ``buyersummary_top_idx``."""
    rows = (
        BuyerSummary.objects.filter(
            currency=currency, last_paid_at__gte=start, first_paid_at__lt=end
        )
        .order_by("-revenue", "identity")
        .values("identity", "paid_orders", "revenue", "refunded_amount")[:limit]
    )
    return [dict(row) for row in rows]


def products_in(period: Period, currency: str, fields) -> dict[int, dict[str, int]]:
    """Per-product figures of whole local days, from the day rollup (365 rows a product a
    year)."""
    rows = (
        SalesDay.objects.filter(day__gte=period.first, day__lte=period.last, currency=currency)
        .values("product_id")
        .annotate(**_sums(fields))
    )
    return {row["product_id"]: _clean(row, fields) for row in rows}


def pairs_in(period: Period, *, limit: int) -> list[tuple[int, int, int]]:
    rows = (
        PairDay.objects.filter(day__gte=period.first, day__lte=period.last)
        .values("product_a", "product_b")
        .annotate(n=Sum("pairs"))
        .order_by("-n", "product_a", "product_b")[:limit]
    )
    return [(r["product_a"], r["product_b"], int(r["n"])) for r in rows]


def latency_percentiles(start: datetime, end: datetime, *, within_ms: int) -> dict[str, Any]:
    """Payment → delivery of deliveries made in the range: p50/p95/p99 in ms, and how many
    took at most ``within_ms``. Only deliveries straight from a payment have a latency."""
    qs = Delivery.objects.filter(
        created_at__gte=start, created_at__lt=end, latency_ms__isnull=False
    )
    agg = qs.aggregate(n=Count("pk"), within=Count("pk", filter=Q(latency_ms__lte=within_ms)))
    out: dict[str, Any] = {
        "n": agg["n"],
        "within": agg["within"],
        "p50": None,
        "p95": None,
        "p99": None,
    }
    if not agg["n"]:
        return out
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) "
                "FROM orders_delivery WHERE created_at >= %s AND created_at < %s "
                "AND latency_ms IS NOT NULL",
                [start, end],
            )
            p50, p95, p99 = cursor.fetchone()[0]
    else:
        ordered = qs.order_by("latency_ms").values_list("latency_ms", flat=True)
        p50, p95, p99 = (ordered[_rank(agg["n"], p)] for p in (0.5, 0.95, 0.99))
    out.update(p50=p50, p95=p95, p99=p99)
    return out


def _rank(n: int, p: float) -> int:
    """The row percentile_disc picks: the first whose cumulative share reaches ``p``."""
    return max(0, math.ceil(p * n) - 1)


def latency_histogram(start: datetime, end: datetime, *, within_ms: int) -> dict[str, Any]:
    """Payment → delivery of the orders placed in the range, from the hourly histograms:
    p50/p95/p99 as the upper edge of the bucket they fall in (None past the last edge), and
    how many took at most ``within_ms`` (exact when it is an edge, as 10 s is)."""
    rows = (
        LatencyHour.objects.filter(hour__gte=start, hour__lt=end)
        .values("bucket")
        .annotate(n=Sum("deliveries"))
        .order_by("bucket")
    )
    counts = {row["bucket"]: int(row["n"]) for row in rows}
    n = sum(counts.values())
    within = sum(
        c
        for b, c in counts.items()
        if b < len(LATENCY_EDGES_MS) and LATENCY_EDGES_MS[b] <= within_ms
    )
    out: dict[str, Any] = {"n": n, "within": within, "p50": None, "p95": None, "p99": None}
    for name, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        rank, seen = max(1, math.ceil(p * n)), 0
        for bucket in sorted(counts):
            seen += counts[bucket]
            if n and seen >= rank:
                out[name] = LATENCY_EDGES_MS[bucket] if bucket < len(LATENCY_EDGES_MS) else None
                break
    return out
