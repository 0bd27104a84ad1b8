"""Measure recovery from a Redis outage: webhooks while Redis is down, then the time from Redis
coming back to the last stranded order delivered and emailed.

Runs gunicorn and a real Celery worker (solo, as the tests do) on a ``redis-server`` of its own
(never the machine's) and a throw-away PostgreSQL database; stops that Redis, posts signed
webhooks for ``--orders`` paid orders, keeps Redis down for ``--down`` seconds, starts it again
and waits for every order to be delivered and emailed once. The issue "Every channel, pushed
live" measured 66–91 s here (47 of 47 webhooks answered 500; the 60 s sweeper did the rest).

    .venv/bin/python bench/redis_outage.py [--orders 300] [--down 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from benchdb import configure, throwaway_database

configure(
    DJANGO_SETTINGS_MODULE="shop.settings_test",
    KAMI_TEST_DB_NAME="bench_kami_outage",
    CELERY_TASK_ALWAYS_EAGER="1",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--down", type=float, default=10.0, help="seconds Redis stays down")
    args = parser.parse_args()
    with throwaway_database():
        run(args.orders, args.down)


def run(n: int, down: float) -> None:
    from django.db import connection

    from orders.models import Delivery, Order, OrderStatus
    from shop.processes import database_url
    from tests.factories import OrderFactory, stock_product
    from tests.faults.helpers import post_webhook
    from tests.faults.servers import OwnRedis, kami_env, kami_web, kami_worker, wait_for
    from tests.stripe_helpers import completed_event

    product = stock_product(n, slug="outage", max_per_order=1)
    orders = [OrderFactory(product=product) for _ in range(n)]
    run_dir = Path(tempfile.mkdtemp(prefix="kami-outage-"))
    (run_dir / "mail").mkdir()
    redis = OwnRedis()
    redis.start()
    queue = f"kami-outage-{uuid.uuid4().hex[:6]}"
    env = kami_env(
        database_url=database_url(connection.settings_dict),
        redis_url=redis.url,
        queue=queue,
        mailbox=run_dir / "mail",
        LOG_LEVEL="WARNING",
    )

    def delivered() -> int:
        return Order.objects.filter(status=OrderStatus.DELIVERED).count()

    def emailed() -> int:
        return Delivery.objects.filter(emailed_at__isnull=False).count()

    try:
        with kami_web(env, run_dir / "web.log") as web, kami_worker(env, run_dir / "worker.log"):
            redis.stop()
            stopped = time.monotonic()
            statuses = [post_webhook(web.port, completed_event(order)) for order in orders]
            posting = time.monotonic() - stopped
            time.sleep(max(0.0, down - posting))
            before = delivered(), emailed()
            redis.start()
            back = time.monotonic()
            done = wait_for(lambda: delivered() == n and emailed() == n, timeout=600, every=0.05)
            recovered = time.monotonic() - back
        mails = len(list((run_dir / "mail").glob("*.eml")))
    finally:
        redis.close()
    print(f"orders: {n}; Redis down {time.monotonic() - stopped - recovered:.1f} s")
    ok = statuses.count(200)
    print(f"webhooks while Redis was down: {ok} × 200, {n - ok} other")
    print(f"delivered / emailed before Redis came back: {before[0]} / {before[1]}")
    print(
        f"Redis back → last order delivered and emailed: {recovered:.2f} s"
        + ("" if done else " (NOT all delivered: see the logs)")
    )
    print(f"emails sent: {mails} (one per order: {mails == n}); logs in {run_dir}")


if __name__ == "__main__":
    main()
