"""Measure payment → key: from a signed Stripe webhook arriving to the keys committed.

Runs the real stack in-process — the webhook view, signature check, inbox insert, the delivery
task (eager, after commit, as in development) and the delivery transaction — on a throw-away
test database (PostgreSQL from DATABASE_URL, default the local server). Prints p50/p95/max
of two clocks: the webhook round trip (the buyer's key is committed when it returns) and the
``Delivery.latency_ms`` the shop records for every order.

    .venv/bin/python bench/payment_to_key.py [--orders 300] [--keys-per-product 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchdb import ROOT, configure, percentile, throwaway_database

configure(KAMI_TEST_DB_NAME="bench_kami")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"


def start_worker(db: dict):
    """A real worker on the bench database; returns once it consumes from its queue."""
    import subprocess

    from shop.processes import celery_worker_command, database_url

    worker = subprocess.Popen(
        celery_worker_command(queue=os.environ["KAMI_TASK_QUEUE"], loglevel="WARNING", solo=True),
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": database_url(db)},
    )
    time.sleep(4)
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--keys-per-product", type=int, default=20000)
    parser.add_argument(
        "--worker",
        action="store_true",
        help="deliver through a real Celery worker on Redis (REDIS_URL, default local db 14)",
    )
    args = parser.parse_args()
    if args.worker:
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
        os.environ["KAMI_TASK_QUEUE"] = f"kami-bench-{os.getpid()}"

    with throwaway_database():
        from django.conf import settings
        from django.db import connection
        from django.test import Client

        from cardpool.services import keys_import
        from orders.models import Delivery, Order
        from orders.payments.stripe_events import (
            build_event,
            checkout_session_object,
            encode,
            sign_payload,
        )
        from orders.services import CheckoutRequest, order_create
        from shop.models import Product, ShopSettings

        shop = ShopSettings.load()
        shop.max_unpaid_per_email = shop.max_unpaid_per_ip = 1_000_000
        shop.max_unpaid_per_network = 1_000_000
        shop.save()
        product = Product.objects.create(
            slug="bench", name="Bench", price=990, currency="USD", max_per_order=10
        )
        started = time.perf_counter()
        text = "\n".join(f"BENCH-{i:08d}" for i in range(args.keys_per_product))
        report = keys_import(product=product, text=text)
        import_seconds = time.perf_counter() - started
        client = Client()
        round_trips: list[float] = []
        worker = start_worker(connection.settings_dict) if args.worker else None
        for i in range(args.orders):
            order = order_create(
                req=CheckoutRequest(
                    product="bench",
                    quantity=1,
                    email=f"b{i}@example.com",
                    client_ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                )
            )
            payload = encode(
                build_event("checkout.session.completed", checkout_session_object(order))
            )
            header = sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            t0 = time.perf_counter()
            response = client.post(
                "/payments/stripe/webhook",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=header,
            )
            assert response.status_code == 200
            while worker and not Order.objects.filter(pk=order.pk, status="delivered").exists():
                time.sleep(0.0005)
            round_trips.append((time.perf_counter() - t0) * 1000)
        if worker:
            worker.terminate()
            worker.wait(10)
        delivered = Order.objects.filter(status="delivered").count()
        latencies = [float(v) for v in Delivery.objects.values_list("latency_ms", flat=True)]
        print(f"database: {connection.vendor}; key import: {report} in {import_seconds:.2f}s")
        print(f"orders paid: {args.orders}, delivered: {delivered}")
        for name, values in (
            ("webhook to key committed (ms)" if worker else "webhook round trip (ms)", round_trips),
            ("recorded payment→key latency (ms)", latencies),
        ):
            p50, p95 = statistics.median(values), percentile(values, 95)
            print(f"{name}: p50 {p50:.1f}  p95 {p95:.1f}  max {max(values):.1f}")


if __name__ == "__main__":
    main()
