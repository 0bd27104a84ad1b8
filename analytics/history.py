"""A realistic sales history made in bulk SQL, for benchmarks and demos (``generate_history``).

PostgreSQL only: every row is made by ``INSERT … SELECT`` over ``generate_series``, so a
million orders take minutes, not hours. What it looks like, and why:

- **Time**: orders spread over ``days`` days before ``end``, more towards the end (a growing
  shop) with a few promotion days, and drawn per local hour of the week from a curve with a
  night trough, a lunch bump and an evening peak, strongest on Friday at 22:00 and at
  weekends (the pattern the issue's shops describe). Hours are the shop's ``TIME_ZONE``.
- **Buyers**: about 60% of orders are a first purchase by a new email; the rest come from a
  pool of returning buyers, a few of whom buy very often (a skewed draw).
- **Products**: ten products (by default) with Zipf-like popularity and prices from 1.99 to
  49.00; quantities mostly 1.
- **Outcomes**: ~11% never paid (expired or cancelled); of paid orders ~2.5% refunded in full,
  0.5% in part, 0.3% disputed; holds for review and backorders only in the last two days, as
  an owner clears older ones; the last 15 minutes still have unpaid orders in their hold.
  Payment → delivery mostly under 1.5 s with a tail past 10 s.
- **Channels**: 18% of orders through eight promoters (two of them uplines), attributed with
  their level 1 and 2 commissions and clawbacks of refunds; 12% with a ``utm_source``, 8% from
  a referring site, the rest direct. Product page views ~12 per order.
- **Keys**: one sold key row per delivered unit (the same valid ciphertext in every row, so
  an admin reveal works), a pool of free keys per product, a few voided, and one import batch
  per product and month. Risk decisions: a hold decision per held order and ~1% blocked
  checkouts.

Not made: order events, payment events and emails (the reports do not read them). The
rollups are rebuilt once at the end; the change triggers are switched off for the load when
the database role may do so (a superuser), which only saves the marks a rebuild would drop.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from analytics.rollups import rollups_rebuild
from cardpool.crypto import encrypt_secret
from commissions.models import CommissionSettings, Promoter
from shop.models import Category, Product

PRICES = (990, 1990, 499, 2990, 199, 4900, 1490, 790, 2490, 3990)
WEEKDAY_WEIGHT = (0.9, 0.85, 0.9, 0.95, 1.2, 1.3, 1.1)  # Monday … Sunday
UTM_SOURCES = ("google", "newsletter", "twitter", "reddit")
REFERRERS = ("forum.example", "blog.example", "news.example", "deals.example")
CHUNK = 250_000


class HistoryError(Exception):
    pass


def hour_weight(hour: int) -> float:
    """A day's shape: a trough at 4:00, a lunch bump, an evening peak at 21:00–22:00."""
    evening = math.exp(-((hour - 21.5) ** 2) / 6.0)
    lunch = 0.35 * math.exp(-((hour - 12.5) ** 2) / 2.0)
    night = 0.08 if 2 <= hour <= 6 else 0.2
    return night + lunch + evening


def hour_of_week_weights() -> list[float]:
    """168 weights, Monday 00:00 first; Friday 22:00 is the week's peak."""
    weights = []
    for day in range(7):
        for hour in range(24):
            w = WEEKDAY_WEIGHT[day] * hour_weight(hour)
            if day == 4 and hour == 22:
                w *= 1.35
            weights.append(w)
    return weights


def day_weights(days: int, rng: random.Random) -> list[float]:
    """Growth from 0.6 to 1.0 over the period, and four promotion days at 2.5×."""
    weights = [0.6 + 0.4 * i / max(days - 1, 1) for i in range(days)]
    for i in rng.sample(range(days), min(4, days)):
        weights[i] *= 2.5
    return weights


def cumulative(weights: list[float]) -> list[float]:
    """Lower bounds of each bucket in [0, 1), for ``width_bucket`` (a binary search in SQL)."""
    total = sum(weights)
    bounds, acc = [], 0.0
    for w in weights:
        bounds.append(acc / total)
        acc += w
    return bounds


@dataclass
class HistoryResult:
    orders: int
    seconds: float
    steps: dict[str, float]


def _products(count: int) -> list[Product]:
    category, _ = Category.objects.get_or_create(slug="history", defaults={"name": "History"})
    products = []
    for i in range(count):
        product, _ = Product.objects.get_or_create(
            slug=f"history-{i + 1}",
            defaults={
                "name": f"History Game {i + 1}",
                "price": PRICES[i % len(PRICES)],
                "currency": "USD",
                "category": category,
                "low_stock_threshold": 20,
                "sort_order": i,
            },
        )
        products.append(product)
    return products


def _promoters(count: int) -> list[Promoter]:
    User = get_user_model()
    promoters: list[Promoter] = []
    for i in range(count):
        user, _ = User.objects.get_or_create(
            username=f"history-promoter-{i + 1}",
            defaults={"email": f"promoter{i + 1}@history.invalid"},
        )
        upline = promoters[i % 2] if i >= 2 else None
        promoter, _ = Promoter.objects.get_or_create(
            user=user, defaults={"code": f"HIST{i + 1}", "upline": upline}
        )
        promoters.append(promoter)
    return promoters


_ORDER_COLUMNS = {
    "id", "order_no", "product_id", "quantity", "unit_price", "amount", "currency", "email",
    "buyer_identity", "query_password_hash", "client_ip", "user_agent", "ref_code", "status",
    "hold_expires_at", "payment_provider", "checkout_session_id", "payment_intent",
    "paid_amount", "paid_currency", "refunded_amount", "queued_at", "disputed_at", "created_at",
    "paid_at", "delivered_at", "priority",
}  # fmt: skip


def _order_defaults() -> list[tuple[str, object]]:
    """Every other required column of ``orders_order`` (apps add fields to orders as they
    grow) with its model default, so history stays valid without knowing them by name."""
    from orders.models import Order

    return [
        (f.column, f.get_db_prep_save(f.get_default(), connection))
        for f in Order._meta.concrete_fields
        if f.column not in _ORDER_COLUMNS and not f.null
    ]


def _array(values) -> str:
    return "ARRAY[" + ", ".join(repr(float(v)) for v in values) + "]::float8[]"


def _int_array(values) -> str:
    return "ARRAY[" + ", ".join(str(int(v)) for v in values) + "]::bigint[]"


def _text_array(values) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def history_generate(
    *,
    orders: int,
    days: int = 365,
    products: int = 10,
    promoters: int = 8,
    seed: int = 11,
    end: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> HistoryResult:
    """Add ``orders`` orders of history ending at ``end`` (default now) to this database."""
    if connection.vendor != "postgresql":
        raise HistoryError("generate_history needs PostgreSQL (it writes with bulk SQL).")
    if orders < 1 or days < 1 or products < 1 or promoters < 2:
        raise HistoryError("Give at least 1 order, 1 day, 1 product and 2 promoters.")
    rng = random.Random(seed)
    end = end or timezone.now()
    steps: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, sql: str, params: dict) -> None:
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - t0
        progress(f"{name}: {time.perf_counter() - t0:.1f} s")

    catalog = _products(products)
    team = _promoters(promoters)
    conf = CommissionSettings.load()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM orders_order")
        first_id = cursor.fetchone()[0]
        cursor.execute("SELECT setseed(%s)", [rng.random() * 2 - 1])
    params = {
        "first_id": first_id,
        "first_day": (timezone.localtime(end) - timedelta(days=days - 1)).date(),
        "tz": timezone.get_default_timezone_name(),
        "end": end,
        "pool": max(orders // 10, 1),
        "secret": encrypt_secret("HISTORY-KEY"),
        "product_ids": [p.pk for p in catalog],
        "l1": float(conf.level1_percent),
        "l2": float(conf.level2_percent),
        "hold_days": int(conf.hold_days),
        "blocks": max(orders // 100, 1),
        "days": days,
    }
    extra = _order_defaults()
    params.update({f"extra_{column}": value for column, value in extra})
    shape = {
        "extra_columns": "".join(f", {column}" for column, _ in extra),
        "extra_values": "".join(f", %(extra_{column})s" for column, _ in extra),
        "day_bounds": _array(cumulative(day_weights(days, rng))),
        "how_bounds": _array(cumulative(hour_of_week_weights())),
        "popularity": _array(cumulative([1.0 / (i + 1) ** 0.9 for i in range(len(catalog))])),
        "product_ids": _int_array(p.pk for p in catalog),
        "prices": _int_array(p.price for p in catalog),
        "codes": _text_array(p.code for p in team),
        "promoter_ids": _int_array(p.pk for p in team),
        "upline_ids": _int_array(p.upline_id or 0 for p in team),
        "n_codes": len(team),
        "utm": _text_array(UTM_SOURCES),
        "referrers": _text_array(REFERRERS),
    }
    with transaction.atomic():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            progress("triggers stay on (not a superuser): the rebuild drops their marks")
        made = 0
        while made < orders:
            n = min(CHUNK, orders - made)
            lo = first_id + made  # order numbers and new emails never repeat an earlier run's
            step("orders", ORDERS_SQL.format(**shape), {**params, "lo": lo, "hi": lo + n - 1})
            made += n
            progress(f"{made:,} orders")
        for name, sql in FOLLOW_UPS:
            step(name, sql.format(**shape), params)
        t0 = time.perf_counter()
        rollups_rebuild()
        steps["rollups"] = time.perf_counter() - t0
        progress(f"rollups: {steps['rollups']:.1f} s")
        step("product views", VIEWS_SQL, params)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    steps["analyze"] = time.perf_counter() - t0
    return HistoryResult(orders=orders, seconds=time.perf_counter() - started, steps=steps)


# Each order draws its numbers once (``draws``); ``width_bucket`` over cumulative bounds picks
# its day, hour of the week and product by weight; ``k`` decides its fate. ``{…}`` are this
# run's arrays of numbers and promoter codes, ``%(…)s`` bound values.
ORDERS_SQL = """
WITH draws AS (
    SELECT g AS n, random() AS r_day, random() AS r_how, random() AS r_min, random() AS r_prod,
        random() AS r_qty, random() AS r_buyer, random() AS r_who, random() AS r_status,
        random() AS r_outcome, random() AS r_pay, random() AS r_lat, random() AS r_ref,
        random() AS r_code
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
), shaped AS (
    SELECT d.*,
        width_bucket(r_day, {day_bounds}) - 1 AS day_index,
        width_bucket(r_how, {how_bounds}) - 1 AS how,
        width_bucket(r_prod, {popularity}) AS p,
        CASE WHEN r_qty < 0.80 THEN 1 WHEN r_qty < 0.93 THEN 2 WHEN r_qty < 0.98 THEN 3
             ELSE 5 END AS qty
    FROM draws d
), timed AS (
    -- how: 0 = Monday 00:00. The drawn day moves back (0-6 days) onto the hour's weekday.
    SELECT s.*, day0 + make_interval(hours => how %% 24, secs => r_min * 3600) AS local_time
    FROM (
        SELECT shaped.*,
            (%(first_day)s::date + day_index
             - ((extract(isodow FROM %(first_day)s::date + day_index)::int - 1 - how / 24
                 + 7) %% 7))::timestamp AS day0
        FROM shaped
    ) s
), placed AS (
    -- Still ahead of "now" (the last day's later hours): the same hour a week earlier.
    SELECT t.*, CASE WHEN z > %(end)s THEN z - interval '7 days' ELSE z END AS at
    FROM (SELECT timed.*, (local_time AT TIME ZONE %(tz)s) AS z FROM timed) t
), fated AS (
    SELECT pl.*,
        CASE
            WHEN at > %(end)s::timestamptz - interval '15 minutes' AND r_status < 0.5
                THEN 'pending'
            WHEN r_status < 0.10 THEN 'expired'
            WHEN r_status < 0.115 THEN 'cancelled'
            WHEN r_outcome < 0.025 THEN 'refunded'
            WHEN at > %(end)s::timestamptz - interval '2 days' AND r_outcome < 0.03
                THEN 'on_hold'
            WHEN at > %(end)s::timestamptz - interval '2 days' AND r_outcome < 0.033
                THEN 'backordered'
            ELSE 'delivered'
        END AS status,
        CASE WHEN r_who < 0.6 THEN 'n' || n || '@buyers.example'
             ELSE 'r' || floor(%(pool)s * r_buyer * r_buyer)::bigint
                  || '@buyers.example' END AS email,
        at + make_interval(secs => 20 + r_pay * 600) AS pay_time,
        CASE WHEN r_lat < 0.97 THEN 150 + r_lat / 0.97 * 1350
             WHEN r_lat < 0.995 THEN 1500 + (r_lat - 0.97) / 0.025 * 8500
             ELSE 10000 + (r_lat - 0.995) / 0.005 * 50000 END AS latency_ms,
        ({prices})[p] * qty AS total
    FROM placed pl
)
INSERT INTO orders_order (order_no, product_id, quantity, unit_price, amount, currency, email,
    buyer_identity, query_password_hash, client_ip, user_agent, ref_code, status,
    hold_expires_at, payment_provider, checkout_session_id, payment_intent, paid_amount,
    paid_currency, refunded_amount, queued_at, disputed_at, created_at, paid_at, delivered_at,
    priority{extra_columns})
SELECT
    'H' || lpad(n::text, 11, '0'), ({product_ids})[p], qty, ({prices})[p], total, 'USD',
    email, email, '', ('198.51.' || (n %% 250) || '.' || (n / 250 %% 250))::inet, 'history',
    CASE WHEN r_ref < 0.18 THEN ({codes})[1 + floor(r_code * {n_codes})::int] ELSE '' END,
    status, at + interval '15 minutes', 'sandbox', '', '',
    CASE WHEN paid THEN total END,
    CASE WHEN paid THEN 'USD' ELSE '' END,
    CASE WHEN status = 'refunded' THEN total
         WHEN status = 'delivered' AND r_outcome >= 0.033 AND r_outcome < 0.038 THEN total / 2
         ELSE 0 END,
    CASE WHEN paid THEN at END,
    CASE WHEN status = 'delivered' AND r_outcome >= 0.038 AND r_outcome < 0.041
         THEN pay_time + interval '3 days' END,
    at,
    CASE WHEN paid THEN pay_time END,
    CASE WHEN status IN ('delivered', 'refunded')
         THEN pay_time + make_interval(secs => latency_ms / 1000.0) END,
    r_who >= 0.6  -- returning buyers go to the priority lane (orders.priority)
    {extra_values}
FROM (SELECT f.*, status NOT IN ('pending', 'expired', 'cancelled') AS paid FROM fated f) o
"""  # noqa: S608 - numbers and constant codes formatted in; values bound

FOLLOW_UPS = [
    (
        "deliveries",
        """INSERT INTO orders_delivery (order_id, key_count, latency_ms, emailed_at, created_at)
        SELECT id, quantity,
            (extract(epoch FROM delivered_at - paid_at) * 1000)::int,
            CASE WHEN id %% 500 = 0 THEN NULL ELSE delivered_at + interval '2 seconds' END,
            delivered_at
        FROM orders_order WHERE id >= %(first_id)s AND delivered_at IS NOT NULL""",
    ),
    (
        "sold keys",
        """INSERT INTO cardpool_cardkey (product_id, secret, fingerprint, status, order_id, slot,
            created_at, sold_at)
        SELECT o.product_id, %(secret)s, md5('sold-' || o.id || '-' || s), 'sold', o.id, s,
            o.created_at - interval '7 days', o.delivered_at
        FROM orders_order o CROSS JOIN LATERAL generate_series(1, o.quantity) s
        WHERE o.id >= %(first_id)s AND o.delivered_at IS NOT NULL""",
    ),
    (
        "free and void keys",
        """INSERT INTO cardpool_cardkey (product_id, secret, fingerprint, status, created_at)
        SELECT pid, %(secret)s, md5('free-' || pid || '-' || i || '-' || %(first_id)s),
            CASE WHEN i %% 97 = 0 THEN 'void' ELSE 'available' END,
            %(end)s::timestamptz - interval '20 days'
        FROM unnest(%(product_ids)s::bigint[]) WITH ORDINALITY AS u(pid, rank)
        CROSS JOIN LATERAL generate_series(1, CASE WHEN rank = 1 THEN 15 ELSE 2000 / rank END) i""",
    ),
    (
        "import batches",
        """INSERT INTO cardpool_importbatch (product_id, source, imported, duplicates, skipped,
            created_at)
        SELECT product_id, 'cli', COUNT(*), 0, 0, MIN(COALESCE(sold_at, created_at))
        FROM cardpool_cardkey WHERE product_id = ANY(%(product_ids)s::bigint[])
        GROUP BY product_id, date_trunc('month', COALESCE(sold_at, created_at))""",
    ),
    (
        "attributions",
        """INSERT INTO commissions_attribution (order_id, ref_code, status, promoter_id,
            upline_id, refusal, upline_refusal, created_at, posted_at, refunded_seen,
            disputed_total, refunded_before_dispute)
        SELECT o.id, o.ref_code, 'attributed', ({promoter_ids})[i],
            NULLIF(({upline_ids})[i], 0), '', '', o.created_at, o.delivered_at,
            o.refunded_amount, 0, 0
        FROM orders_order o
        JOIN LATERAL array_position({codes}, o.ref_code::text) AS i ON true
        WHERE o.id >= %(first_id)s AND o.ref_code <> ''""",
    ),
    (
        "ledger",
        """INSERT INTO commissions_ledgerentry (promoter_id, kind, amount, currency, order_id,
            level, available_at, reason, created_at)
        SELECT who, kind, amount, 'USD', order_id, level, available_at, '', created_at FROM (
            SELECT a.promoter_id AS who, 'commission' AS kind, o.id AS order_id, 1 AS level,
                greatest(1, floor(o.amount * %(l1)s / 100))::bigint AS amount,
                o.delivered_at + make_interval(days => %(hold_days)s) AS available_at,
                o.delivered_at AS created_at
            FROM commissions_attribution a JOIN orders_order o ON o.id = a.order_id
            WHERE o.id >= %(first_id)s AND o.delivered_at IS NOT NULL
            UNION ALL
            SELECT a.upline_id, 'commission', o.id, 2,
                greatest(1, floor(o.amount * %(l2)s / 100))::bigint,
                o.delivered_at + make_interval(days => %(hold_days)s), o.delivered_at
            FROM commissions_attribution a JOIN orders_order o ON o.id = a.order_id
            WHERE o.id >= %(first_id)s AND o.delivered_at IS NOT NULL
              AND a.upline_id IS NOT NULL
            UNION ALL
            SELECT a.promoter_id, 'clawback', o.id, 1,
                -greatest(1, floor(o.refunded_amount * %(l1)s / 100))::bigint,
                o.delivered_at + interval '1 day', o.delivered_at + interval '1 day'
            FROM commissions_attribution a JOIN orders_order o ON o.id = a.order_id
            WHERE o.id >= %(first_id)s AND o.delivered_at IS NOT NULL
              AND o.refunded_amount > 0
        ) entries""",
    ),
    (
        "sources",
        """INSERT INTO analytics_ordersource (order_id, kind, value)
        SELECT id,
            CASE WHEN h < 0.6 THEN 'utm' ELSE 'referrer' END,
            CASE WHEN h < 0.6 THEN ({utm})[1 + (id %% 4)::int]
                 ELSE ({referrers})[1 + (id %% 4)::int] END
        FROM (SELECT id, (abs(hashtext(order_no)) %% 1000) / 1000.0 / 0.25 AS h
              FROM orders_order WHERE id >= %(first_id)s AND ref_code = '') s
        WHERE h < 1""",
    ),
    (
        "risk decisions",
        """INSERT INTO riskrules_riskdecision (rule_name, rule_kind, outcome, order_id,
            product_id, email, message, inputs, created_at)
        SELECT 'Amount over 3x the average', 'amount_anomaly', 'hold', id, product_id, email,
            'Held for review', '{{}}'::jsonb, created_at
        FROM orders_order WHERE id >= %(first_id)s AND status = 'on_hold'
        UNION ALL
        SELECT CASE WHEN i %% 3 = 0 THEN 'Blocklist' ELSE 'Same IP + product velocity' END,
            CASE WHEN i %% 3 = 0 THEN 'blocklist' ELSE 'velocity' END, 'block', NULL,
            (%(product_ids)s::bigint[])[1 + i %% cardinality(%(product_ids)s::bigint[])],
            'blocked' || i || '@buyers.example', 'Refused at checkout', '{{}}'::jsonb,
            %(end)s::timestamptz - make_interval(secs => (i * 7919) %% (%(days)s * 86400))
        FROM generate_series(1, %(blocks)s) i""",
    ),
]

VIEWS_SQL = """
INSERT INTO analytics_productviewhour (hour, product_id, stripe, views)
SELECT hour, product_id, 0, SUM(orders) * 12 + (abs(hashtext(hour::text)) %% 7)
FROM analytics_saleshour WHERE product_id = ANY(%(product_ids)s::bigint[])
GROUP BY hour, product_id
ON CONFLICT (hour, product_id, stripe) DO UPDATE SET views = EXCLUDED.views
"""  # noqa: S608 - constant SQL
