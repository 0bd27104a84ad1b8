"""The priority lane under a flood: 200 small orders paid at once, 10 priority orders among them.

Kami's production shape (``bench/stack.py``: gunicorn, the Celery task worker, the notify
worker, and — as in docker-compose.yml — a priority worker of its own) on a throw-away
PostgreSQL database. The priority orders are five above the owner's priority amount and five
by returning buyers (an email with a delivered order). All 210 webhooks are sent as one
burst, the priority ones spread through it, and each order's webhook → delivered latency is
read from ``delivered_at``. Three runs of the same burst:

- **own worker**: production (``priority-worker``), the priority queue has its own worker;
- **shared worker**: one worker consumes both queues (``make run``'s shape);
- **no lane**: the same orders with ``priority`` cleared, so every payment is on the main queue.

Writes its section of docs/benchmarks.md (``--output -`` prints only).

    .venv/bin/python bench/priority.py [--flood 200] [--priority 10] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchdb import ROOT, configure, throwaway_database
from load import LoadClient, redis_cleanup, wire
from report import git_commit, loadavg, now_utc, percentile, table, write_section
from stack import Stack, StackConfig, bench_environment

VIP = "bench-vip"
VIP_PRICE = 6000
PRIORITY_AMOUNT = 5000
LANES = ("own worker", "shared worker", "no lane")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flood", type=int, default=200)
    p.add_argument("--priority", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=8, help="task worker threads")
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    return p.parse_args()


def sql(query: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def wait_delivered(stack: Stack, ids: list[int], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (n,) = sql(
            "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND status = 'delivered'", (ids,)
        )[0]
        if n >= len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n} of {len(ids)} delivered in {timeout:.0f} s")
        stack.check_alive()
        time.sleep(0.05)


def latencies(sends: list, ids: dict[str, int]) -> tuple[dict[str, float], dict[str, float]]:
    """Per order: webhook sent → delivered, and its event stored → delivered (the queue and
    the delivery, without the web server's own backlog of webhooks)."""
    rows = sql(
        "SELECT o.order_no, extract(epoch FROM o.delivered_at)::float8,"
        " extract(epoch FROM e.received_at)::float8 FROM orders_order o"
        " JOIN orders_paymentevent e ON e.order_id = o.id WHERE o.id = ANY(%s)",
        (list(ids.values()),),
    )
    delivered = {no: at for no, at, _ in rows}
    stored = {no: (at - received) * 1000 for no, at, received in rows}
    sent = {no: (delivered[no] - sent_at) * 1000 for no, sent_at, _, status in sends}
    return sent, stored


def interleave(flood: list[dict], urgent: list[dict]) -> list[dict]:
    """The priority orders spread evenly through the flood, the first after a tenth of it, so
    each arrives with a backlog of small orders already queued ahead of it."""
    out, step = list(flood), max(1, len(flood) // (len(urgent) + 1))
    for i, order in enumerate(urgent):
        out.insert(min(len(out), step * (i + 1) + i), order)
    return out


def make_orders(maker, args) -> tuple[list[dict], list[dict]]:
    from seed import HOT

    from orders.models import Order

    flood = maker.make([HOT], args.flood)
    half = args.priority // 2
    urgent = maker.make([VIP], half)  # above the owner's priority amount
    for returning in maker.returning:  # returning buyers: an email with a delivered order
        if len(urgent) >= args.priority:
            break
        urgent += maker.make([HOT], 1, email=returning)
    flags = dict(
        Order.objects.filter(order_no__in=[o["order_no"] for o in flood + urgent]).values_list(
            "order_no", "priority"
        )
    )
    if any(flags[o["order_no"]] for o in flood) or not all(flags[o["order_no"]] for o in urgent):
        raise RuntimeError("the flood must be normal orders and the others priority orders")
    return flood, urgent


def run_lane(lane: str, *, args, env: dict, logdir: Path, maker) -> dict:
    from orders.models import Order

    queue = env["KAMI_TASK_QUEUE"]
    config = StackConfig(
        web_workers=3,
        concurrency=args.concurrency,
        mail_queue=f"{queue}-notify",
        priority_queue=f"{queue}-priority" if lane == "own worker" else None,
    )
    stack = Stack(root=ROOT, env=env, config=config, logdir=logdir)
    gen = None
    try:
        stack.start()
        gen = LoadClient(
            port=stack.port,
            secret=env["STRIPE_WEBHOOK_SECRET"],
            env=env,
            log=logdir / f"loadgen-{lane}.log",
        )
        stack.wait_http()
        from seed import HOT

        warm = maker.make([HOT], 10)
        gen.call("burst", orders=[wire(o) for o in warm], concurrency=4)
        wait_delivered(stack, [o["id"] for o in warm])
        maker.returning = [o["email"] for o in warm]
        flood, urgent = make_orders(maker, args)
        if lane == "no lane":
            Order.objects.filter(pk__in=[o["id"] for o in urgent]).update(priority=False)
        burst = interleave(flood, urgent)
        print(f"  {lane}: {len(flood)} + {len(urgent)} webhooks …", flush=True)
        answer = gen.call("burst", orders=[wire(o) for o in burst], concurrency=32)
        bad = [s for s in answer["sends"] if s[3] != 200]
        if bad:
            raise RuntimeError(f"{len(bad)} webhooks not answered 200")
        ids = {o["order_no"]: o["id"] for o in burst}
        wait_delivered(stack, list(ids.values()))
        ms, queued = latencies(answer["sends"], ids)
    finally:
        if gen is not None:
            gen.close()
        stack.stop()
    flood_ms = [ms[o["order_no"]] for o in flood]
    urgent_ms = [ms[o["order_no"]] for o in urgent]
    flood_q = [queued[o["order_no"]] for o in flood]
    urgent_q = [queued[o["order_no"]] for o in urgent]
    row = {
        "flood_stored_p50": percentile(flood_q, 50),
        "flood_stored_p95": percentile(flood_q, 95),
        "priority_stored_p50": percentile(urgent_q, 50),
        "priority_stored_p95": percentile(urgent_q, 95),
        "lane": lane,
        "pools": config.describe(),
        "flood_p50": percentile(flood_ms, 50),
        "flood_p95": percentile(flood_ms, 95),
        "flood_max": max(flood_ms),
        "priority_p50": percentile(urgent_ms, 50),
        "priority_p95": percentile(urgent_ms, 95),
        "priority_max": max(urgent_ms),
        "burst_seconds": answer["seconds"],
    }
    print(
        f"    flood p50 {row['flood_p50']:.0f} ms p95 {row['flood_p95']:.0f} ms; "
        f"priority p50 {row['priority_p50']:.0f} ms p95 {row['priority_p95']:.0f} ms; "
        f"stored → delivered: flood p50 {row['flood_stored_p50']:.0f} ms, "
        f"priority p50 {row['priority_stored_p50']:.0f} ms",
        flush=True,
    )
    return row


def render(rows: list[dict], args, command: str, loads: tuple[str]) -> str:
    lines = [
        "## Priority lane: 10 priority orders in a flood of 200",
        "",
        f"`bench/priority.py` ({now_utc()}, commit {git_commit(ROOT)}; `{command}`; load "
        f"average {loads[0]} at the start, {loadavg()} at the end): "
        f"{args.flood} small orders (9.90) and {args.priority} priority orders (half above "
        f"the owner's priority amount of {PRIORITY_AMOUNT / 100:.2f}, half by returning "
        "buyers) paid by one burst of signed webhooks, 32 at a time, the priority ones spread "
        "through it. Webhook sent → `delivered_at` committed, per order; production shape "
        "(gunicorn -w 3, DEBUG off, Redis broker, every default risk rule, two commission "
        "rows per order).",
        "",
        table(
            [
                "run",
                "flood p50",
                "flood p95",
                "flood max",
                "priority p50",
                "priority p95",
                "priority max",
            ],
            [
                [
                    r["lane"],
                    f"{r['flood_p50']:.0f} ms",
                    f"{r['flood_p95']:.0f} ms",
                    f"{r['flood_max']:.0f} ms",
                    f"{r['priority_p50']:.0f} ms",
                    f"{r['priority_p95']:.0f} ms",
                    f"{r['priority_max']:.0f} ms",
                ]
                for r in rows
            ],
        ),
        "",
        "The same orders from their event's arrival (stored by the webhook) to delivered: the "
        "queue and the delivery, without the web server's own backlog of webhooks.",
        "",
        table(
            ["run", "flood p50", "flood p95", "priority p50", "priority p95"],
            [
                [
                    r["lane"],
                    f"{r['flood_stored_p50']:.0f} ms",
                    f"{r['flood_stored_p95']:.0f} ms",
                    f"{r['priority_stored_p50']:.0f} ms",
                    f"{r['priority_stored_p95']:.0f} ms",
                ]
                for r in rows
            ],
        ),
        "",
        "- **own worker**: as `docker-compose.yml` — "
        + next(r["pools"] for r in rows if r["lane"] == "own worker")
        + ".",
        "- **shared worker**: one task worker consumes the main and the priority queue "
        "(`make run`'s shape); Celery takes from its queues in turn, so a priority task waits "
        "for a free thread but not for the backlog.",
        "- **no lane**: the same orders with `priority` cleared: every payment on the main "
        "queue, first come first served.",
    ]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    run = f"{os.getpid()}_{secrets.token_hex(3)}"
    env = bench_environment(
        postgres=args.postgres, redis=args.redis, db_name=f"bench_kami_priority_{run}", run=run
    )
    os.environ.update(env)
    env = dict(os.environ)
    configure()
    logdir = Path(tempfile.mkdtemp(prefix=f"kami-bench-priority-{run}-"))
    command = "bench/priority.py " + " ".join(sys.argv[1:])
    rows: list[dict] = []
    loads = (loadavg(),)
    try:
        with throwaway_database():
            from django.db import connection
            from seed import OrderMaker, seed

            from cardpool.services import keys_import
            from shop.models import Product, ShopSettings
            from shop.processes import database_url

            env["DATABASE_URL"] = database_url(connection.settings_dict)
            keys = (args.flood + args.priority + 20) * len(LANES)
            seed(hot_keys=keys, spread_keys=10, race_keys=1, spread_products=1)
            vip = Product.objects.create(
                slug=VIP, name=VIP, price=VIP_PRICE, currency="USD", max_per_order=10
            )
            keys_import(product=vip, text="\n".join(f"VIP-{i:06d}" for i in range(keys)))
            ShopSettings.objects.filter(pk=1).update(priority_amount=PRIORITY_AMOUNT)
            maker = OrderMaker(env=env, processes=2, run=run)
            try:
                for lane in LANES:
                    rows.append(run_lane(lane, args=args, env=env, logdir=logdir, maker=maker))
            finally:
                maker.close()
    finally:
        redis_cleanup(args.redis, run)
    text = render(rows, args, command, loads)
    print("\n" + text)
    if args.output != "-":
        write_section(Path(args.output), "priority", text)
        print(f"written to {args.output}")
    shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
