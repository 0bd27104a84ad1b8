"""The bench shop, through Kami's own services: settings, products, keys, promoters, orders.

Orders are made by ``order_create`` — every default risk rule on, each order from its own
client IP (the "same IP + product" velocity rule and the per-IP checkout rate limit would
otherwise refuse the benchmark) and its own email, attributed to a promoter with an upline so
each delivery posts two commission entries. ``order_create`` is slow enough that a pool of
processes (spawned, each with its own Django and one database connection) makes them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

HOT = "bench-hot"
RACE = "bench-race"
PROMOTER, UPLINE = "BENCH", "BENCHUP"
PRICE = 990


def spread_slugs(n: int = 10) -> list[str]:
    return [f"bench-spread-{i}" for i in range(n)]


@dataclass
class Shop:
    hot_id: int
    race_id: int
    spread: list[str]
    promoter_id: int
    upline_id: int
    keys: dict[str, int]
    import_seconds: float


def seed(*, hot_keys: int, spread_keys: int, race_keys: int, spread_products: int = 10) -> Shop:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from cardpool.services import keys_import
    from commissions.models import Promoter
    from shop.models import Product, ShopSettings

    # Risk rules and the checkout rate limit keep the defaults the migrations seeded: the
    # buyers' distinct emails and IPs are what lets the load through, as real buyers would.
    ShopSettings.objects.update_or_create(
        pk=1,
        defaults={
            "max_unpaid_per_email": 10**6,
            "max_unpaid_per_ip": 10**6,
            "max_unpaid_per_network": 10**6,
        },
    )
    User = get_user_model()
    up = Promoter.objects.create(
        user=User.objects.create_user("bench-upline", "upline@bench.invalid", None),
        code=UPLINE,
    )
    promoter = Promoter.objects.create(
        user=User.objects.create_user("bench-promoter", "promoter@bench.invalid", None),
        code=PROMOTER,
        upline=up,
    )
    wanted = {HOT: hot_keys, RACE: race_keys} | {
        s: spread_keys for s in spread_slugs(spread_products)
    }
    started = time.perf_counter()
    keys: dict[str, int] = {}
    for slug, count in wanted.items():
        product = Product.objects.create(
            slug=slug, name=slug, price=PRICE, currency="USD", max_per_order=10
        )
        text = "\n".join(f"{slug.upper()}-{i:09d}" for i in range(count))
        keys_import(product=product, text=text)
        keys[slug] = count
    import_seconds = time.perf_counter() - started
    # A live shop's tables are vacuumed and analysed by autovacuum; a freshly bulk-loaded one
    # is not yet, and every count would read the heap. Do what autovacuum would.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return Shop(
        hot_id=Product.objects.get(slug=HOT).pk,
        race_id=Product.objects.get(slug=RACE).pk,
        spread=spread_slugs(spread_products),
        promoter_id=promoter.pk,
        upline_id=up.pk,
        keys=keys,
        import_seconds=import_seconds,
    )


def enabled_risk_rules() -> list[str]:
    from riskrules.models import RiskRule

    return list(
        RiskRule.objects.filter(enabled=True).order_by("position").values_list("name", flat=True)
    )


# --- making orders ---------------------------------------------------------------------------


def _init_worker(env: dict[str, str], path: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle: it stops us
    os.environ.update(env)
    sys.path[:0] = [p for p in path if p not in sys.path]
    import django

    django.setup()


def create_orders(specs: list[dict]) -> list[dict]:
    """``specs``: ``{product, email, ip, ref, query_password?}`` → the orders, or their errors."""
    from orders.services import CheckoutRequest, order_create

    out = []
    for spec in specs:
        try:
            order = order_create(
                req=CheckoutRequest(
                    product=spec["product"],
                    quantity=1,
                    email=spec["email"],
                    client_ip=spec["ip"],
                    ref=spec.get("ref", ""),
                    query_password=spec.get("query_password", ""),
                )
            )
        except Exception as exc:
            out.append({"error": f"{type(exc).__name__}: {exc}"})
            continue
        out.append(
            {
                "id": order.pk,
                "order_no": order.order_no,
                "amount": order.amount,
                "currency": order.currency,
                "email": order.email,
            }
        )
    from django.db import connection

    connection.close()  # between batches the pool holds no connection
    return out


class OrderMaker:
    """Unique buyers (email, client IP) and a small process pool calling ``order_create``."""

    def __init__(self, *, env: dict[str, str], processes: int, run: str):
        self.run = run
        self.counter = 0
        self.processes = processes
        self.pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(env, list(sys.path)),
        )

    def buyer(self) -> tuple[str, str]:
        n = self.counter
        self.counter += 1
        ip = f"10.{n // 62500 % 250 + 1}.{n // 250 % 250}.{n % 250 + 1}"
        return f"b{n}.{self.run}@example.com", ip

    def make(self, products: list[str], count: int, *, ref: str = PROMOTER, **extra) -> list[dict]:
        """``count`` orders, products taken in turn; raises if any checkout was refused."""
        specs = []
        for i in range(count):
            email, ip = self.buyer()
            specs.append(
                {"product": products[i % len(products)], "email": email, "ip": ip, "ref": ref}
                | extra
            )
        size = max(1, min(200, -(-count // (self.processes * 2))))
        batches = [specs[i : i + size] for i in range(0, len(specs), size)]
        orders = [o for batch in self.pool.map(create_orders, batches) for o in batch]
        errors = [o["error"] for o in orders if "error" in o]
        if errors:
            raise RuntimeError(f"{len(errors)} of {count} checkouts refused, e.g. {errors[0]}")
        return orders

    def close(self) -> None:
        processes = list((self.pool._processes or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
            process.join(5)
