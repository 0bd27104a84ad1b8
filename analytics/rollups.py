"""Keeping the rollups exact: recompute every bucket a committed change touched.

Why this is exact, including when a refund or a late delivery changes yesterday:

1. The change and its mark commit together. A trigger (``analytics.schema``) inserts the
   order's id into ``analytics_orderchange`` in the very transaction that inserted or changed
   the order (or posted a ledger entry for it). Rolled back, neither exists; committed, both do.
2. ``rollups_refresh`` deletes the marks it can see (``DELETE … RETURNING``) and, in the same
   transaction, recomputes from the orders table every hour those orders were placed in and
   every buyer they belong to. A bucket is replaced by a fresh aggregate of its source rows,
   never adjusted by a delta, so a refresh that runs twice, or sees a change twice, is harmless.
3. A writer still in flight has an uncommitted mark that the DELETE cannot see; its mark stays
   and the next refresh recomputes that hour again, from a snapshot that includes it.
4. Refreshes run one at a time (a transaction-level advisory lock on PostgreSQL; SQLite's
   IMMEDIATE transactions already serialise writers), so an older snapshot can never overwrite
   a newer recomputation of the same bucket.

A refund today of an order placed yesterday at 21:10 updates the order's ``refunded_amount``;
the trigger marks the order; the next refresh recomputes yesterday's 21:00 bucket. The reports
run a refresh before they read (marks are few: a refresh of one busy hour reads a few hundred
orders), and the periodic task keeps the queue short, so every report reflects every change
committed before it was asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.periods import local_midnight, shop_tz
from core.money import THREE_DECIMAL, ZERO_DECIMAL

BATCH = 20_000
_CHUNK = 500
_LOCK_KEY = 0x4B414D49  # "KAMI": the analytics refresh lock
_SALES_TABLE = "analytics_saleshour"
_SHOP_TABLE = "analytics_shophour"
_CHANNEL_TABLE = "analytics_channelhour"
_BUYER_TABLE = "analytics_buyersummary"
_PAIR_TABLE = "analytics_pairhour"
_LATENCY_TABLE = "analytics_latencyhour"
_HOUR_TABLES = (_SALES_TABLE, _SHOP_TABLE, _CHANNEL_TABLE, _PAIR_TABLE, _LATENCY_TABLE)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _hour(column: str) -> str:
    """SQL for the UTC hour ``column`` falls in (timestamps are stored in UTC)."""
    if _postgres():
        return f"date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return f"strftime('%%Y-%%m-%%d %%H:00:00', {column})"


def _plus_days(column: str, days: int) -> str:
    if _postgres():
        return f"({column} + interval '{int(days)} days')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {column}, '{int(days):+d} days')"


def _quoted(codes: Iterable[str]) -> str:
    return ", ".join(f"'{c}'" for c in sorted(codes))


def _minor_per_major(currency_column: str) -> str:
    return (
        f"CASE WHEN {currency_column} IN ({_quoted(ZERO_DECIMAL)}) THEN 1 "
        f"WHEN {currency_column} IN ({_quoted(THREE_DECIMAL)}) THEN 1000 ELSE 100 END"
    )


def _value_band(money: str, currency_column: str) -> str:
    from analytics.models import VALUE_BANDS

    factor = _minor_per_major(currency_column)
    whens = " ".join(
        f"WHEN {money} < {bound} * ({factor}) THEN {i}" for i, bound in enumerate(VALUE_BANDS)
    )
    return f"CASE {whens} ELSE {len(VALUE_BANDS)} END"


def _param(value: datetime):
    """A datetime as the backend stores it: SQLite compares text, so an aware datetime must
    become the same naive-UTC text as the column, or ``hour >= bound`` misses the bound."""
    return connection.ops.adapt_datetimefield_value(value)


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _hours_filter(hours: Sequence[datetime]) -> tuple[str, list]:
    """``created_at`` within any of ``hours`` (each a UTC hour start), as index range scans."""
    clauses = " OR ".join(["(o.created_at >= %s AND o.created_at < %s)"] * len(hours))
    params: list = []
    for hour in hours:
        params += [_param(hour), _param(hour + timedelta(hours=1))]
    return f"({clauses})", params


_FIRST_PAID_ELSEWHERE = """EXISTS (
    SELECT 1 FROM orders_order e
    WHERE e.buyer_identity = o.buyer_identity AND e.paid_at IS NOT NULL
      AND (e.paid_at < o.paid_at OR (e.paid_at = o.paid_at AND e.id < o.id)))"""
_NEXT_PAID = """(
    SELECT MIN(e.paid_at) FROM orders_order e
    WHERE e.buyer_identity = o.buyer_identity AND e.paid_at IS NOT NULL
      AND (e.paid_at > o.paid_at OR (e.paid_at = o.paid_at AND e.id > o.id)))"""
SALES_SUMS = (
    "orders",
    "paid_orders",
    "delivered_orders",
    "units_paid",
    "units_delivered",
    "revenue",
    "refunded_amount",
    "refunded_orders",
    "disputed_orders",
    "new_buyer_orders",
    "new_buyer_revenue",
    "repeat_7",
    "repeat_30",
    "unemailed",
)
DAY_SUMS = (
    "orders",
    "paid_orders",
    "delivered_orders",
    "units_paid",
    "units_delivered",
    "revenue",
    "refunded_amount",
)


# A full rebuild reads every order once: each buyer's payments in order come from one window
# (the same (paid_at, id) order as the probes above) instead of two index probes per order.
_RANKED_ORDERS = """(
    SELECT o.*, row_number() OVER w AS pay_rank, lead(o.paid_at) OVER w AS lead_paid
    FROM orders_order o
    WINDOW w AS (PARTITION BY o.buyer_identity ORDER BY o.paid_at NULLS LAST, o.id))"""


def _sales_sql(where: str, *, full: bool = False, orders: str = "orders_order") -> str:
    from analytics.models import VALUE_BAND_FIELDS

    money = "COALESCE(o.paid_amount, o.amount)"
    if full:
        source, first_paid, next_paid = _RANKED_ORDERS, "o.pay_rank = 1", "o.lead_paid"
    else:
        source, first_paid, next_paid = (
            orders,
            f"NOT {_FIRST_PAID_ELSEWHERE}",
            _NEXT_PAID,
        )
    bands = ", ".join(
        f"SUM(CASE WHEN paid = 1 AND band = {i} THEN 1 ELSE 0 END)"
        for i in range(len(VALUE_BAND_FIELDS))
    )
    return f"""
    INSERT INTO {_SALES_TABLE} (hour, product_id, currency, orders, paid_orders,
        delivered_orders, units_paid, units_delivered, revenue, refunded_amount,
        refunded_orders, disputed_orders, new_buyer_orders, new_buyer_revenue, repeat_7,
        repeat_30, unemailed, {", ".join(VALUE_BAND_FIELDS)})
    SELECT hour, product_id, currency, COUNT(*), SUM(paid), SUM(delivered),
        SUM(paid * quantity), SUM(delivered * quantity), SUM(paid * money),
        SUM(refunded_amount), SUM(refunded), SUM(disputed), SUM(is_new), SUM(is_new * money),
        SUM(CASE WHEN is_new = 1 AND next_paid <= {_plus_days("paid_at", 7)} THEN 1 ELSE 0 END),
        SUM(CASE WHEN is_new = 1 AND next_paid <= {_plus_days("paid_at", 30)} THEN 1 ELSE 0 END),
        SUM(unemailed), {bands}
    FROM (
        SELECT {_hour("o.created_at")} AS hour, o.product_id, o.currency, o.quantity,
            o.refunded_amount, o.paid_at, {money} AS money,
            CASE WHEN o.paid_at IS NULL THEN 0 ELSE 1 END AS paid,
            CASE WHEN o.delivered_at IS NULL THEN 0 ELSE 1 END AS delivered,
            CASE WHEN o.refunded_amount > 0 OR o.status = 'refunded' THEN 1 ELSE 0 END
                AS refunded,
            CASE WHEN o.disputed_at IS NULL THEN 0 ELSE 1 END AS disputed,
            CASE WHEN o.paid_at IS NOT NULL AND {first_paid} THEN 1 ELSE 0 END AS is_new,
            CASE WHEN o.paid_at IS NULL THEN NULL ELSE {next_paid} END AS next_paid,
            CASE WHEN o.delivered_at IS NOT NULL AND EXISTS (
                SELECT 1 FROM orders_delivery dl WHERE dl.order_id = o.id
                AND dl.emailed_at IS NULL) THEN 1 ELSE 0 END AS unemailed,
            {_value_band(money, "o.currency")} AS band
        FROM {source} o
        WHERE {where}
    ) x
    GROUP BY hour, product_id, currency
    """  # noqa: S608 - table names and constants only; values are bound parameters


def _shop_sql(where: str) -> str:
    """``SalesHour`` summed over products, for the same hours (``where`` on ``hour``)."""
    from analytics.models import VALUE_BAND_FIELDS

    sums = (*SALES_SUMS, *VALUE_BAND_FIELDS)
    return f"""
    INSERT INTO {_SHOP_TABLE} (hour, currency, {", ".join(sums)})
    SELECT hour, currency, {", ".join(f"SUM({c})" for c in sums)}
    FROM {_SALES_TABLE} WHERE {where}
    GROUP BY hour, currency
    """  # noqa: S608 - table and column names only; values are bound parameters


def _channel_sql(where: str, *, orders: str = "orders_order") -> str:
    return f"""
    INSERT INTO {_CHANNEL_TABLE} (hour, kind, value, currency, orders, paid_orders,
        delivered_orders, revenue, refunded_amount, commission)
    SELECT hour, kind, value, currency, COUNT(*), SUM(paid), SUM(delivered), SUM(paid * money),
        SUM(refunded_amount), SUM(commission)
    FROM (
        SELECT {_hour("o.created_at")} AS hour, o.currency, o.refunded_amount,
            COALESCE(o.paid_amount, o.amount) AS money,
            CASE WHEN o.paid_at IS NULL THEN 0 ELSE 1 END AS paid,
            CASE WHEN o.delivered_at IS NULL THEN 0 ELSE 1 END AS delivered,
            CASE WHEN a.status = 'attributed' THEN 'promoter'
                 WHEN s.kind IS NOT NULL THEN s.kind ELSE 'direct' END AS kind,
            CASE WHEN a.status = 'attributed' THEN p.code
                 WHEN s.kind IS NOT NULL THEN s.value ELSE '' END AS value,
            COALESCE((SELECT SUM(l.amount) FROM commissions_ledgerentry l
                      WHERE l.order_id = o.id AND l.kind IN ('commission', 'clawback')), 0)
                AS commission
        FROM {orders} o
        LEFT JOIN commissions_attribution a ON a.order_id = o.id
        LEFT JOIN commissions_promoter p ON p.id = a.promoter_id
        LEFT JOIN analytics_ordersource s ON s.order_id = o.id
        WHERE {where}
    ) x
    GROUP BY hour, kind, value, currency
    """  # noqa: S608 - table names and constants only; values are bound parameters


def _buyers_sql(where: str) -> str:
    if _postgres():
        return _buyers_sql_postgres(where)

    def first(column: str, offset: int = 0) -> str:
        return f"""(SELECT e.{column} FROM orders_order e
            WHERE e.buyer_identity = b.identity AND e.paid_at IS NOT NULL
            ORDER BY e.paid_at, e.id LIMIT 1 OFFSET {offset})"""  # noqa: S608

    return f"""
    INSERT INTO {_BUYER_TABLE} (identity, first_paid_at, first_order_created_at, second_paid_at,
        last_paid_at, paid_orders, currency, revenue, refunded_amount)
    SELECT b.identity, b.first_paid_at, {first("created_at")}, {first("paid_at", 1)},
        b.last_paid_at, b.paid_orders, b.currency,
        (SELECT COALESCE(SUM(COALESCE(e.paid_amount, e.amount)), 0) FROM orders_order e
         WHERE e.buyer_identity = b.identity AND e.paid_at IS NOT NULL
           AND e.currency = b.currency),
        (SELECT COALESCE(SUM(e.refunded_amount), 0) FROM orders_order e
         WHERE e.buyer_identity = b.identity AND e.paid_at IS NOT NULL
           AND e.currency = b.currency)
    FROM (
        SELECT o.buyer_identity AS identity, MIN(o.paid_at) AS first_paid_at,
            MAX(o.paid_at) AS last_paid_at, COUNT(*) AS paid_orders, MIN(o.currency) AS currency
        FROM orders_order o
        WHERE o.paid_at IS NOT NULL AND o.buyer_identity <> '' AND {where}
        GROUP BY o.buyer_identity
    ) b
    """  # noqa: S608 - table names only; values are bound parameters


def _latency_sql(where: str, *, orders: str = "orders_order") -> str:
    from analytics.models import LATENCY_EDGES_MS

    whens = " ".join(
        f"WHEN dl.latency_ms <= {edge} THEN {i}" for i, edge in enumerate(LATENCY_EDGES_MS)
    )
    return f"""
    INSERT INTO {_LATENCY_TABLE} (hour, bucket, deliveries)
    SELECT hour, bucket, COUNT(*) FROM (
        SELECT {_hour("o.created_at")} AS hour,
            CASE {whens} ELSE {len(LATENCY_EDGES_MS)} END AS bucket
        FROM {orders} o JOIN orders_delivery dl ON dl.order_id = o.id
        WHERE {where} AND dl.latency_ms IS NOT NULL
    ) x
    GROUP BY hour, bucket
    """  # noqa: S608 - table names and constants only; values are bound parameters


def _buyers_sql_postgres(where: str) -> str:
    """The same rows as the portable query, by ordered aggregates: one pass over the orders."""
    return f"""
    INSERT INTO {_BUYER_TABLE} (identity, first_paid_at, first_order_created_at, second_paid_at,
        last_paid_at, paid_orders, currency, revenue, refunded_amount)
    SELECT o.buyer_identity, MIN(o.paid_at),
        (array_agg(o.created_at ORDER BY o.paid_at, o.id))[1],
        (array_agg(o.paid_at ORDER BY o.paid_at, o.id))[2],
        MAX(o.paid_at), COUNT(*), MIN(b.currency),
        COALESCE(SUM(COALESCE(o.paid_amount, o.amount)) FILTER (WHERE o.currency = b.currency), 0),
        COALESCE(SUM(o.refunded_amount) FILTER (WHERE o.currency = b.currency), 0)
    FROM orders_order o
    JOIN (
        SELECT o.buyer_identity, MIN(o.currency) AS currency FROM orders_order o
        WHERE o.paid_at IS NOT NULL AND o.buyer_identity <> '' AND {where}
        GROUP BY o.buyer_identity
    ) b ON b.buyer_identity = o.buyer_identity
    WHERE o.paid_at IS NOT NULL AND {where}
    GROUP BY o.buyer_identity
    """  # noqa: S608 - table names only; values are bound parameters


def _pairs_sql(where: str, *, orders: str = "orders_order") -> str:
    """PostgreSQL probes each order's buyer (LATERAL: an index scan per order; a plain join
    hashed the whole orders table). SQLite has no LATERAL, and its shops are small."""
    from analytics.models import PairHour

    if _postgres():
        join, on = "CROSS JOIN LATERAL", ""
    else:
        return _pairs_sql_sqlite(where, orders=orders)
    return f"""
    INSERT INTO {_PAIR_TABLE} (hour, product_a, product_b, pairs)
    SELECT hour, a, b, COUNT(*) FROM (
        SELECT DISTINCT {_hour("o.created_at")} AS hour, o.id,
            CASE WHEN o.product_id < e.product_id THEN o.product_id ELSE e.product_id END AS a,
            CASE WHEN o.product_id < e.product_id THEN e.product_id ELSE o.product_id END AS b
        FROM {orders} o
        {join} (
            SELECT e.product_id FROM orders_order e
            WHERE e.buyer_identity = o.buyer_identity AND e.paid_at IS NOT NULL
              AND e.product_id <> o.product_id AND e.paid_at < o.paid_at
              AND e.paid_at >= {_plus_days("o.paid_at", -PairHour.WINDOW_DAYS)}
            OFFSET 0
        ) e{on}
        WHERE {where} AND o.paid_at IS NOT NULL AND o.buyer_identity <> ''
    ) x
    GROUP BY hour, a, b
    """  # noqa: S608 - table names only; values are bound parameters


def _pairs_sql_sqlite(where: str, *, orders: str) -> str:
    from analytics.models import PairHour

    return f"""
    INSERT INTO {_PAIR_TABLE} (hour, product_a, product_b, pairs)
    SELECT hour, a, b, COUNT(*) FROM (
        SELECT DISTINCT {_hour("o.created_at")} AS hour, o.id,
            CASE WHEN o.product_id < e.product_id THEN o.product_id ELSE e.product_id END AS a,
            CASE WHEN o.product_id < e.product_id THEN e.product_id ELSE o.product_id END AS b
        FROM {orders} o
        JOIN orders_order e ON e.buyer_identity = o.buyer_identity
        WHERE {where} AND o.paid_at IS NOT NULL AND o.buyer_identity <> ''
          AND e.paid_at IS NOT NULL AND e.product_id <> o.product_id
          AND e.paid_at < o.paid_at
          AND e.paid_at >= {_plus_days("o.paid_at", -PairHour.WINDOW_DAYS)}
    ) x
    GROUP BY hour, a, b
    """  # noqa: S608 - table names only; values are bound parameters


def _lock(cursor, *, jit: bool = True) -> None:
    """Take the refresh lock. ``jit=False``: a refresh's statements touch a few hundred orders,
    but their estimates (correlated subqueries over lists of hours) pass PostgreSQL's JIT
    threshold, and compiling them took seconds where running them takes milliseconds."""
    if _postgres():
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if not jit:
            cursor.execute("SET LOCAL jit = off")


def _take_marks(cursor, limit: int) -> list[int]:
    cursor.execute(
        "DELETE FROM analytics_orderchange WHERE id IN "
        "(SELECT id FROM analytics_orderchange ORDER BY id LIMIT %s) RETURNING order_id",
        [limit],
    )
    return sorted({row[0] for row in cursor.fetchall()})


def _placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


def _affected(cursor, order_ids: list[int]) -> tuple[list[datetime], list[str]]:
    hours: set = set()
    identities: set[str] = set()
    for chunk in _chunks(order_ids):
        cursor.execute(
            f"SELECT DISTINCT {_hour('o.created_at')}, o.buyer_identity FROM orders_order o "  # noqa: S608
            f"WHERE o.id IN ({_placeholders(len(chunk))})",
            list(chunk),
        )
        for hour, identity in cursor.fetchall():
            hours.add(hour)
            if identity:
                identities.add(identity)
    return sorted(_as_datetime(h) for h in hours), sorted(identities)


def _as_datetime(value) -> datetime:
    """SQLite hands the truncated hour back as text."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# PostgreSQL: the orders of a list of hours as one nested loop of index range scans (an OR of
# hundreds of ranges can make the planner read the whole table instead).
# Materialised first, so the planner cannot fold the few orders of those hours into a join
# over the whole table.
_ORDERS_OF_HOURS = """WITH picked AS MATERIALIZED (
    SELECT o.* FROM unnest(%s::timestamptz[]) AS h(start)
    JOIN orders_order o
      ON o.created_at >= h.start AND o.created_at < h.start + interval '1 hour')"""


def _recompute_hours(cursor, hours: list[datetime]) -> None:
    for chunk in _chunks(hours, 200):
        exact = [_param(hour) for hour in chunk]
        marks = _placeholders(len(chunk))
        for table in _HOUR_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE hour IN ({marks})", exact)  # noqa: S608
        if _postgres():
            where, params, orders, prefix = "1 = 1", [list(chunk)], "picked", _ORDERS_OF_HOURS
        else:
            (where, params), orders, prefix = _hours_filter(chunk), "orders_order", ""
        for build in (_sales_sql, _channel_sql, _pairs_sql, _latency_sql):
            cursor.execute(prefix + build(where, orders=orders), params)
        cursor.execute(_shop_sql(f"hour IN ({marks})"), exact)
    _recut_days(sorted({timezone.localtime(h, shop_tz()).date() for h in hours}))


def _recompute_buyers(cursor, identities: list[str]) -> set[datetime]:
    """Recompute the buyers; return the hours of the first paid orders whose repeat counts
    changed: those of buyers whose first or second payment is not what it was (a new buyer,
    a second payment). A refund changes neither, so it recomputes no other hour."""
    hours: set[datetime] = set()
    select = (
        f"SELECT identity, {_hour('first_order_created_at')}, first_paid_at, second_paid_at "  # noqa: S608
        f"FROM {_BUYER_TABLE} WHERE identity IN "
    )
    for chunk in _chunks(identities):
        marks = _placeholders(len(chunk))
        cursor.execute(f"{select}({marks})", list(chunk))
        before = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(f"DELETE FROM {_BUYER_TABLE} WHERE identity IN ({marks})", list(chunk))  # noqa: S608
        where = f"o.buyer_identity IN ({marks})"
        cursor.execute(_buyers_sql(where), list(chunk) * (2 if _postgres() else 1))
        cursor.execute(f"{select}({marks})", list(chunk))
        for identity, hour, *payments in cursor.fetchall():
            old = before.get(identity)
            if old is None or list(old[1:]) != payments:
                hours.add(_as_datetime(hour))
                if old is not None and old[0] is not None:
                    hours.add(_as_datetime(old[0]))
    return hours


def _recut_days(days: list | None) -> None:
    """Re-sum the local-day rollups of ``days`` (None: all) from the hour rollups, in the
    shop's time zone now. Rows pass through Python: one per day and product, never an order."""
    from analytics.models import PairDay, PairHour, RollupZone, SalesDay, SalesHour

    tz = shop_tz()
    sales, pairs = SalesHour.objects.all(), PairHour.objects.all()
    if days is None:
        SalesDay.objects.all().delete()
        PairDay.objects.all().delete()
    else:
        if not days:
            return
        SalesDay.objects.filter(day__in=days).delete()
        PairDay.objects.filter(day__in=days).delete()
        spans = Q()
        for day in days:
            spans |= Q(
                hour__gte=local_midnight(day), hour__lt=local_midnight(day) + timedelta(days=1)
            )
        sales, pairs = sales.filter(spans), pairs.filter(spans)
    wanted = set(days or [])

    def keep(day) -> bool:
        return days is None or day in wanted

    SalesDay.objects.bulk_create(
        [
            SalesDay(**row)
            for row in sales.annotate(day=TruncDate("hour", tzinfo=tz))
            .values("day", "product_id", "currency")
            .annotate(**{name: Sum(name) for name in DAY_SUMS})
            if keep(row["day"])
        ],
        batch_size=2000,
    )
    PairDay.objects.bulk_create(
        [
            PairDay(**row)
            for row in pairs.annotate(day=TruncDate("hour", tzinfo=tz))
            .values("day", "product_a", "product_b")
            .annotate(pairs=Sum("pairs"))
            if keep(row["day"])
        ],
        batch_size=2000,
    )
    if days is None:
        RollupZone.objects.update_or_create(pk=1, defaults={"time_zone": str(tz)})


def _ensure_zone() -> None:
    """Day rollups cut in another time zone than ``TIME_ZONE`` are recut, once."""
    from analytics.models import RollupZone

    zone = RollupZone.objects.filter(pk=1).values_list("time_zone", flat=True).first()
    if zone != str(shop_tz()):
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            _recut_days(None)


def rollups_refresh(*, batch: int = BATCH) -> int:
    """Recompute every bucket touched by a committed change; returns how many marks it took.

    Cheap when nothing changed (one DELETE on an empty table), so every report calls it first.
    """
    taken = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor, jit=False)
            order_ids = _take_marks(cursor, batch)
            if order_ids:
                hours, identities = _affected(cursor, order_ids)
                first_hours = _recompute_buyers(cursor, identities)
                _recompute_hours(cursor, sorted(set(hours) | first_hours))
            _ensure_zone()
        taken += len(order_ids)
        if len(order_ids) < batch:
            return taken


def rollups_rebuild() -> None:
    """Recompute every rollup from scratch (after a bulk load such as ``generate_history``).

    The marks present now are covered by the rebuild and dropped; marks committed meanwhile
    stay for the next refresh."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        cursor.execute("DELETE FROM analytics_orderchange")
        for table in (*_HOUR_TABLES, _BUYER_TABLE):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        cursor.execute(_sales_sql("1 = 1", full=True), [])
        cursor.execute(_shop_sql("1 = 1"), [])
        cursor.execute(_channel_sql("1 = 1"), [])
        cursor.execute(_pairs_sql("1 = 1"), [])
        cursor.execute(_latency_sql("1 = 1"), [])
        cursor.execute(_buyers_sql("1 = 1"), [])
        _recut_days(None)


def pending_marks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM analytics_orderchange")
        return cursor.fetchone()[0]
