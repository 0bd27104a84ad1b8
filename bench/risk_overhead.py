"""Measure what risk control costs per order.

Runs real checkouts (``order_create``: validation, advisory locks, stock gate, insert) on a
throw-away PostgreSQL database, three ways, interleaved so drift hits all equally:

- ``off``:      every rule disabled and the rate limit off (risk control does nothing);
- ``defaults``: the seeded defaults (blocklist, IP + product velocity, amount anomaly) plus the
                checkout rate limit in the cache (Redis when ``REDIS_URL`` is set);
- ``all``:      every kind of rule enabled (defaults + quantity cap, disposable domains,
                email velocity), with 200 blocklist entries including 50 CIDR ranges.

It also times ``evaluate_checkout`` alone (the rules, without the checkout around them).
Prints p50/p95 per order and the difference to ``off``.

    .venv/bin/python bench/risk_overhead.py [--orders 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchdb import configure, percentile, throwaway_database

configure(
    KAMI_TEST_DB_NAME="bench_kami_risk",
    REDIS_URL="redis://127.0.0.1:6379/11",
    KAMI_CACHE_PREFIX="kami-bench-risk",
)
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=400, help="checkouts per mode")
    args = parser.parse_args()

    with throwaway_database():
        run(args.orders)


def run(n: int) -> None:
    from datetime import timedelta

    from django.core.cache import cache
    from django.db import connection
    from django.utils import timezone

    from orders.models import Order, OrderStatus
    from orders.services import CheckoutRequest, order_create
    from riskrules.context import CheckoutContext
    from riskrules.evaluation import CHECKS, evaluate_checkout
    from riskrules.models import BlocklistEntry, RiskRule, RiskSettings
    from riskrules.services import rules_seed_defaults
    from shop.models import ShopSettings
    from tests.factories import OrderFactory, stock_product

    rules_seed_defaults()
    ShopSettings.objects.update_or_create(
        pk=1,
        defaults={
            "max_unpaid_per_email": 10**6,
            "max_unpaid_per_ip": 10**6,
            "max_unpaid_per_network": 10**6,
        },
    )
    products = {
        mode: stock_product(n + 10, slug=f"bench-{mode}") for mode in ("off", "defaults", "all")
    }
    # Some history, so the amount anomaly has an average to compute over.
    now = timezone.now()
    for product in products.values():
        for _ in range(50):
            OrderFactory(
                product=product,
                status=OrderStatus.DELIVERED,
                paid_at=now - timedelta(days=1),
                delivered_at=now - timedelta(days=1),
            )
    BlocklistEntry.objects.bulk_create(
        [BlocklistEntry(kind="email", value=f"bad{i}@example.net") for i in range(100)]
        + [BlocklistEntry(kind="domain", value=f"spam{i}.example") for i in range(50)]
        + [BlocklistEntry(kind="network", value=f"10.{i}.0.0/16") for i in range(50)]
    )
    defaults = set(RiskRule.objects.filter(enabled=True).values_list("pk", flat=True))

    def configure(mode: str) -> None:
        if mode == "off":
            RiskRule.objects.update(enabled=False)
        elif mode == "defaults":
            RiskRule.objects.update(enabled=False)
            RiskRule.objects.filter(pk__in=defaults).update(enabled=True)
        else:
            RiskRule.objects.update(enabled=True)
        RiskSettings.objects.update_or_create(
            pk=1, defaults={"checkout_rate_limit": 0 if mode == "off" else 10**6}
        )

    timings: dict[str, list[float]] = {"off": [], "defaults": [], "all": []}
    cache.clear()
    for i in range(n):
        for mode in timings:
            configure(mode)
            req = CheckoutRequest(
                product=f"bench-{mode}",
                quantity=1,
                email=f"buyer{i}@example.com",
                client_ip=f"198.{51 + i // 65000}.{(i // 250) % 250}.{i % 250 + 1}",
            )
            started = time.perf_counter()
            order_create(req=req)
            timings[mode].append((time.perf_counter() - started) * 1000)

    configure("all")
    product = products["all"]
    ctx = CheckoutContext(
        product_id=product.pk,
        quantity=1,
        amount=product.price,
        email="x@example.com",
        client_ip="198.51.100.200",
    )
    eval_ms = []
    for _ in range(n):
        started = time.perf_counter()
        evaluate_checkout(ctx=ctx)
        eval_ms.append((time.perf_counter() - started) * 1000)

    per_rule: dict[str, list[float]] = {}
    rules = list(RiskRule.objects.filter(enabled=True).order_by("position", "pk"))
    for _ in range(n):
        for rule in rules:
            started = time.perf_counter()
            CHECKS[rule.kind](rule, ctx, timezone.now())
            per_rule.setdefault(rule.name, []).append((time.perf_counter() - started) * 1000)

    print(f"database: {connection.vendor}; cache: {cache.__class__.__name__}; {n} orders per mode")
    base = statistics.median(timings["off"])
    for mode, values in timings.items():
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(
            f"order_create, rules {mode:8s}: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
            f"(+{p50 - base:5.2f} ms p50 vs off)"
        )
    print(
        f"evaluate_checkout alone, every rule on: p50 {statistics.median(eval_ms):.2f} ms  "
        f"p95 {percentile(eval_ms, 95):.2f} ms"
    )
    for name, values in per_rule.items():
        print(f"  {name[:60]:60s} p50 {statistics.median(values):.2f} ms")
    assert Order.objects.count() >= 3 * n


if __name__ == "__main__":
    main()
