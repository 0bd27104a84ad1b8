"""Kami under load: the speed figures, written to docs/benchmarks.md.

Starts the production shape — gunicorn (sync workers) and a Celery worker on Redis, DEBUG off
— on a throw-away PostgreSQL database with every migration, seeds a shop through Kami's own
services, and drives it from a load generator in its own process (``bench/loadgen.py``):

1. webhook → delivered latency at fixed open-loop arrival rates (one hot product; ten);
2. saturation: delivered orders/s with webhooks as fast as the server takes them, and the CPU
   each process used meanwhile;
3. a closed loop of buyers: checkout, pay, poll until the key is readable;
4. order lookup latency, by email and by query password;
5. a race of buyers for a product with few keys, and replayed webhooks: nothing sold twice;
6. the bare-SQL floor of the delivery transaction (``bench/floor.py``) and Kami's share of it.

Everything it starts is stopped and the database dropped, on success, failure or Ctrl-C.

    .venv/bin/python bench/load.py [--quick] [--pool prefork|threads|gevent|solo]
        [--concurrency N] [--web-workers N] [--mail-queue auto|none|NAME] [--output PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

from benchdb import ROOT, configure, force_drop_database, throwaway_database
from report import git_commit, keep_sections, loadavg, machine, now_utc, percentile, render
from stack import Stack, StackConfig, _die_with_parent, bench_environment

DB_PREFIX = "bench_kami_load_"
MAX_CONNECTIONS = 30  # PostgreSQL has 100 for the whole machine
ORDER_MAKERS = 2
FLOOR_THREADS = (2, 4)
STEPS = ("ladder", "saturation", "closed", "lookup", "race", "replay", "floor")
LOOKUP_PASSWORD = "bench-lookup-password"  # noqa: S105 - a throw-away shop's order
FINAL = ("delivered", "on_hold", "backordered", "refunded", "expired", "cancelled")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: short phases, few rates")
    p.add_argument(
        "--pool",
        default="threads",
        help="Celery pool: threads (as production), prefork, gevent, solo",
    )
    p.add_argument("--concurrency", type=int, default=8, help="Celery worker concurrency")
    p.add_argument("--web-workers", type=int, default=5, help="gunicorn sync workers")
    p.add_argument(
        "--mail-queue",
        default="auto",
        help="the side-effect (email) queue and its own worker: 'auto' (default) is Kami's "
        "notify queue with a worker of its own, as in production; 'none': the task worker "
        "consumes it too; or a queue name",
    )
    p.add_argument("--mail-pool", default="threads", help="pool of the notify worker")
    p.add_argument("--mail-concurrency", type=int, default=4)
    p.add_argument("--rates", help="open-loop rates per second, e.g. 25,50,100")
    p.add_argument("--phase-seconds", type=float, help="seconds per open-loop rate")
    p.add_argument("--phase-max-orders", type=int, help="cap on orders per open-loop rate")
    p.add_argument("--saturation-orders", type=int, help="default: from the ladder, ≤3000")
    p.add_argument("--buyers", type=int, default=16, help="closed-loop buyers")
    p.add_argument("--closed-loop-seconds", type=float)
    p.add_argument("--hot-keys", type=int)
    p.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated subset of {','.join(STEPS)} (or 'none': start, warm up, stop)",
    )
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument(
        "--output",
        help="markdown file to write (default docs/benchmarks.md; a --quick run writes "
        "nothing unless given one); '-' for stdout only",
    )
    args = p.parse_args()
    q = args.quick
    args.rates = [
        float(r) for r in (args.rates or ("25,50,100" if q else "25,50,100,200,400,800")).split(",")
    ]
    args.phase_seconds = args.phase_seconds or (3.0 if q else 10.0)
    # Orders are made with order_create beforehand (~50-100/s here), so high rates get
    # shorter phases rather than minutes of set-up: 1,500 orders is 3.75 s at 400/s.
    args.phase_max_orders = args.phase_max_orders or (400 if q else 1500)
    args.closed_loop_seconds = args.closed_loop_seconds or (8.0 if q else 30.0)
    args.hot_keys = args.hot_keys or (20_000 if q else 100_000)
    args.spread_keys = 1_000 if q else 5_000
    args.drain_seconds = 10.0 if q else 30.0  # how long a phase's backlog may take to clear
    args.step_timeout = 20.0 if q else 60.0  # bound on any other step's deliveries
    args.lookups = 100 if q else 500
    args.lookup_seconds = 5.0 if q else 20.0
    args.replays = 60 if q else 300
    args.floor_orders = 4_000 if q else 10_000
    args.floor_seconds = 3.0 if q else 8.0
    args.steps = set(args.steps.split(",")) - {"none", ""}
    unknown = args.steps - set(STEPS)
    if unknown:
        p.error(f"unknown steps {', '.join(sorted(unknown))}; known: {', '.join(STEPS)}, none")
    if args.output is None:
        args.output = "-" if q else str(ROOT / "docs" / "benchmarks.md")
    return args


class LoadClient:
    """The load generator process, one JSON line per command and per answer."""

    def __init__(self, *, port: int, secret: str, env: dict, log: Path):
        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--port", str(port)]
            + ["--secret", secret],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=ROOT,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, cmd: str, **kwargs) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator died (see its log)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"load generator, {cmd}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def wire(order: dict) -> dict:
    return {k: order[k] for k in ("order_no", "amount", "currency", "email")}


class Bench:
    def __init__(self, args, env: dict, logdir: Path):
        self.args, self.env, self.logdir = args, env, logdir
        self.res: dict = {"ladder": {}}
        self.paid_ids: set[int] = set()  # every order whose webhook was answered 200
        self.watch: ConnectionWatch | None = None

    # --- database reads (orders_order only, plus checks) ---------------------------------------

    def sql(self, query: str, params=()) -> list[tuple]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def wait_settled(self, ids: list[int], timeout: float) -> bool:
        """Until every order in ``ids`` reached a final status; False if ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while True:
            (n,) = self.sql(
                "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND status = ANY(%s)",
                (ids, list(FINAL)),
            )[0]
            if n >= len(ids):
                return True
            if time.monotonic() > deadline:
                return False
            self.stack.check_alive()
            time.sleep(0.1)

    def outcome(self, ids: list[int]) -> dict[str, tuple[str, float | None]]:
        rows = self.sql(
            "SELECT order_no, status, extract(epoch FROM delivered_at)::float8 FROM orders_order"
            " WHERE id = ANY(%s)",
            (ids,),
        )
        return {no: (status, at) for no, status, at in rows}

    def purge_queue(self) -> int:
        """Drop the backlog a bounded step left, so it does not slow the next one down."""
        from shop.celery import app

        queues = [self.env["KAMI_TASK_QUEUE"]]
        if self.config.mail_queue:
            queues.append(self.config.mail_queue)
        elif hasattr(sys.modules.get("shop.celery"), "notify_queue"):
            queues.append(sys.modules["shop.celery"].notify_queue(queues[0]))
        purged = 0
        with app.connection_for_write() as conn:
            for queue in queues:
                with contextlib.suppress(Exception):  # a queue never declared
                    purged += conn.default_channel.queue_purge(queue) or 0
        return purged

    def summarize(self, orders: list[dict], sends: list, *, settled: bool, rate=None) -> dict:
        """One phase's figures. *delivered /s* is deliveries over the longer of the sending
        span and the delivering span (each plus one inter-arrival gap): the offered rate when
        Kami keeps up, its processing rate when it falls behind, never more than offered."""
        by_no = {o["order_no"]: o for o in orders}
        ok = [s for s in sends if s[3] == 200]
        ids = [by_no[s[0]]["id"] for s in ok]
        self.paid_ids.update(ids)
        state = self.outcome(ids)
        latencies, delivered_at = [], []
        for no, sent_at, _, _ in ok:
            status, at = state.get(no, ("?", None))
            if status == "delivered" and at is not None:
                latencies.append((at - sent_at) * 1000)
                delivered_at.append(at)
        http = [s[2] for s in ok]
        sent = [s[1] for s in sends]
        gap = 1 / rate if rate else 0.0
        send_span = max(sent) - min(sent) if sent else 0.0
        delivered_span = max(delivered_at) - min(delivered_at) if delivered_at else 0.0
        span = max(send_span, delivered_span) + gap
        return {
            "orders": len(orders),
            "sent_rate": (len(sent) - 1) / send_span if send_span > 0 else None,
            "delivered": len(latencies),
            "delivered_rate": len(latencies) / span if span > 0 else 0.0,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "http_p50": percentile(http, 50),
            "http_p99": percentile(http, 99),
            "errors": len(sends) - len(ok),
            "error_statuses": dict(Counter(str(s[3]) for s in sends if s[3] != 200)),
            "undelivered": len(ok) - len(latencies),
            "settled": settled,
            "delivered_at": delivered_at,
        }

    # --- steps -------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """A few orders through the whole path: every process is up and has connected."""
        from seed import HOT

        started = time.monotonic()
        orders = self.maker.make([HOT], 10)
        orders += self.maker.make([HOT], 1, query_password=LOOKUP_PASSWORD)
        sends = self.gen.call("burst", orders=[wire(o) for o in orders], concurrency=4)["sends"]
        bad = [s for s in sends if s[3] != 200]
        if bad:
            raise RuntimeError(f"warm-up webhooks answered {Counter(s[3] for s in bad)}")
        ids = [o["id"] for o in orders]
        self.paid_ids.update(ids)
        if not self.wait_settled(ids, 90):
            raise RuntimeError(
                "warm-up orders were not delivered in 90 s; worker log:\n"
                + self.stack.log_tail("celery")
            )
        statuses = Counter(s for s, _ in self.outcome(ids).values())
        if statuses != {"delivered": len(ids)}:
            raise RuntimeError(f"warm-up orders ended {dict(statuses)}, not all delivered")
        self.lookup_email_order = orders[0]
        self.lookup_password_order = orders[-1]
        self.res["setup"]["stack ready (warm-up delivered) in"] = (
            f"{time.monotonic() - started:.1f} s"
        )

    def ladder(self, kind: str, products: list[str]) -> None:
        a = self.args
        rows = []
        self.res["ladder"][kind] = rows
        for rate in a.rates:
            n = max(10, min(int(rate * a.phase_seconds), a.phase_max_orders))
            orders = self.maker.make(products, n)
            print(f"  {kind}: {rate:g}/s × {n} orders …", flush=True)
            answer = self.gen.call("open_loop", orders=[wire(o) for o in orders], rate=rate)
            sends = answer["sends"]
            ok_ids = [o["id"] for o, s in zip(orders, sends, strict=True) if s[3] == 200]
            settled = self.wait_settled(ok_ids, a.drain_seconds)
            row = self.summarize(orders, sends, settled=settled, rate=rate)
            row.pop("delivered_at")
            row["rate"] = rate
            row["lag_p99"] = percentile(answer["lag_ms"], 99)
            rows.append(row)
            stop = []
            if not settled:
                purged = self.purge_queue()
                stop.append(f"not drained in {a.drain_seconds:g} s ({purged} tasks purged)")
            if row["delivered_rate"] < 0.9 * rate:
                stop.append("delivered < 90 % of offered")
            if row["p99"] > 2000:
                stop.append("p99 > 2 s")
            if row["errors"]:
                stop.append(f"webhook errors {row['error_statuses']}")
            if answer["skipped"]:
                stop.append(f"{answer['skipped']} sends skipped (512 connections open)")
            print(
                f"    delivered {row['delivered_rate']:.1f}/s, p50 {row['p50']:.0f} ms, "
                f"p99 {row['p99']:.0f} ms, errors {row['errors']}",
                flush=True,
            )
            if stop:
                row["stop"] = "; ".join(stop)
                break

    def saturation(self) -> None:
        from seed import HOT

        a = self.args
        best = max((r["delivered_rate"] for r in self.res["ladder"].get("hot", [])), default=100.0)
        low, high = (100, 400) if a.quick else (500, 3000)
        n = a.saturation_orders or max(low, min(high, int(best * 12)))
        orders = self.maker.make([HOT], n)
        concurrency = 32
        print(f"  saturation: {n} webhooks, {concurrency} at a time …", flush=True)
        meter = CpuProbe(self)
        meter.start()
        answer = self.gen.call("burst", orders=[wire(o) for o in orders], concurrency=concurrency)
        sends = answer["sends"]
        ok_ids = [o["id"] for o, s in zip(orders, sends, strict=True) if s[3] == 200]
        settled = self.wait_settled(ok_ids, a.step_timeout)
        cpu = meter.stop()
        if not settled:
            self.purge_queue()
        row = self.summarize(orders, sends, settled=settled)
        at = sorted(row.pop("delivered_at"))
        rate = (len(at) - 1) / (at[-1] - at[0]) if len(at) > 1 and at[-1] > at[0] else 0.0
        self.res["saturation"] = row | {
            "concurrency": concurrency,
            "delivered_rate": rate,
            "accept_rate": len(ok_ids) / answer["seconds"] if answer["seconds"] else None,
            "sent_ok": len(ok_ids),
            "bounded": not settled,
        }
        self.res["cpu"] = cpu
        print(f"    {rate:.1f} delivered/s", flush=True)

    def closed_loop(self) -> None:
        from seed import HOT, PROMOTER

        a = self.args
        print(f"  closed loop: {a.buyers} buyers × {a.closed_loop_seconds:g} s …", flush=True)
        r = self.gen.call(
            "closed_loop",
            buyers=a.buyers,
            seconds=a.closed_loop_seconds,
            product=HOT,
            ref=PROMOTER,
            run=self.env["KAMI_BENCH_RUN"],
        )
        self.res["closed_loop"] = {
            "buyers": a.buyers,
            "seconds": r["seconds"],
            "completed": r["completed"],
            "rate": r["completed"] / r["seconds"] if r["seconds"] else 0.0,
            "p50": percentile(r["pay_to_key_ms"], 50),
            "p95": percentile(r["pay_to_key_ms"], 95),
            "checkout_p50": percentile(r["checkout_ms"], 50),
            "checkout_p95": percentile(r["checkout_ms"], 95),
            "polls_mean": sum(r["polls"]) / len(r["polls"]) if r["polls"] else None,
            "errors": ", ".join(f"{k}: {v}" for k, v in r["errors"].items()),
        }
        print(f"    {self.res['closed_loop']['rate']:.1f} orders/s", flush=True)

    def lookups(self) -> None:
        a = self.args
        out = {}
        for name, order, cred in (
            ("email", self.lookup_email_order, {"email": self.lookup_email_order["email"]}),
            ("query password", self.lookup_password_order, {"password": LOOKUP_PASSWORD}),
        ):
            print(f"  lookups by {name} …", flush=True)
            r = self.gen.call(
                "lookups",
                order_no=order["order_no"],
                count=a.lookups,
                seconds=a.lookup_seconds,
                ip="198.51.100.7",
                **cred,
            )
            out[name] = {
                "n": len(r["ms"]),
                "p50": percentile(r["ms"], 50),
                "p95": percentile(r["ms"], 95),
                "statuses": ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()),
            }
        self.res["lookups"] = out

    def race(self) -> None:
        from seed import PROMOTER, RACE

        keys = self.shop.keys[RACE]
        n = 200
        print(f"  race: {n} buyers for {keys} keys …", flush=True)
        run = self.env["KAMI_BENCH_RUN"]
        buyers = [
            {"email": f"race{i}.{run}@example.com", "ip": f"192.168.{i // 250}.{i % 250 + 1}"}
            for i in range(n)
        ]
        answers = self.gen.call("checkouts", product=RACE, buyers=buyers, ref=PROMOTER)["answers"]
        created = [x for x in answers if x["status"] == 201]
        refused = Counter(
            f"{x['status']} {x['code']}".strip() for x in answers if x["status"] != 201
        )
        nos = [x["order_no"] for x in created]
        id_of = dict(
            self.sql("SELECT order_no, id FROM orders_order WHERE order_no = ANY(%s)", (nos,))
        )
        orders = [wire(x) | {"id": id_of[x["order_no"]]} for x in created]
        sends = self.gen.call("pay", orders=[wire(o) for o in orders], concurrency=32)["sends"]
        ok_ids = [o["id"] for o, s in zip(orders, sends, strict=True) if s[3] == 200]
        self.paid_ids.update(ok_ids)
        settled = self.wait_settled(ok_ids, self.args.step_timeout)
        state = self.outcome([o["id"] for o in orders])
        statuses = Counter(s for s, _ in state.values())
        delivered = [o for o in orders if state[o["order_no"]][0] == "delivered"]
        # Through the API, as the buyers see them: no key in two orders, none with too many.
        seen = self.gen.call(
            "keys_of", orders=[{"order_no": o["order_no"], "email": o["email"]} for o in delivered]
        )["keys"]
        all_keys = [k for ks in seen.values() for k in ks]
        figures = {
            "checkouts answered 201": len(created),
            "checkouts refused": ", ".join(f"{k}: {v}" for k, v in refused.items()) or "none",
            # Beyond the hold share (orders.holds) checkout takes orders without a hold:
            # whoever pays first gets a key, the rest wait as backorders (then refunds).
            "checkouts accepted without a hold": self.sql(
                "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND NOT holds_keys",
                ([o["id"] for o in orders],),
            )[0][0],
            "orders paid (webhook 200)": len(ok_ids),
            "order statuses after payment": ", ".join(f"{k}: {v}" for k, v in statuses.items()),
            "keys handed out (API)": len(all_keys),
            "keys sold twice (API: same key in two orders)": len(all_keys) - len(set(all_keys)),
            "orders with more keys than bought (API)": sum(len(ks) > 1 for ks in seen.values()),
            "oversell (keys handed out − keys in stock)": max(0, len(all_keys) - keys),
            "settled in time": "yes" if settled else "no",
        }
        figures |= self.key_checks([o["id"] for o in orders])
        self.res["race"] = {"buyers": n, "keys": keys, "figures": figures}

    def key_checks(self, ids: list[int]) -> dict:
        """SQL checks on the card pool (its columns as of today; n/a if they changed)."""
        try:
            over = self.sql(
                "SELECT count(*) FROM orders_order o WHERE o.id = ANY(%s) AND o.quantity <"
                " (SELECT count(*) FROM cardpool_cardkey k WHERE k.order_id = o.id)",
                (ids,),
            )[0][0]
            wrong = self.sql(
                "SELECT count(*) FROM orders_order o WHERE o.id = ANY(%s)"
                " AND o.status = 'delivered' AND o.quantity <> (SELECT count(*)"
                " FROM cardpool_cardkey k WHERE k.order_id = o.id AND k.status = 'sold')",
                (ids,),
            )[0][0]
            orphans = self.sql(
                "SELECT count(*) FROM cardpool_cardkey WHERE status = 'sold' AND order_id IS NULL"
            )[0][0]
        except Exception as exc:  # the card pool is being redesigned: report, do not fail
            return {"SQL key checks": f"n/a ({type(exc).__name__}: {exc})"}
        return {
            "orders holding more keys than their quantity (SQL)": over,
            "delivered orders whose sold keys ≠ quantity (SQL)": wrong,
            "sold keys without an order, whole database (SQL)": orphans,
        }

    def replays(self) -> None:
        from seed import HOT

        n, copies = self.args.replays, 3
        print(f"  replays: {n} events × {copies} …", flush=True)
        orders = self.maker.make([HOT], n)
        r = self.gen.call("replay", orders=[wire(o) for o in orders], copies=copies, concurrency=16)
        ids = [o["id"] for o in orders]
        self.paid_ids.update(ids)
        settled = self.wait_settled(ids, self.args.step_timeout)
        statuses = Counter(s for s, _ in self.outcome(ids).values())
        q = self.sql
        figures = {
            "webhook answers": ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()),
            "orders delivered": statuses.get("delivered", 0),
            "other statuses": ", ".join(
                f"{k}: {v}" for k, v in statuses.items() if k != "delivered"
            )
            or "none",
            "payment events stored": q(
                "SELECT count(*) FROM orders_paymentevent WHERE order_id = ANY(%s)", (ids,)
            )[0][0],
            "orders with more than one delivery": q(
                "SELECT count(*) FROM (SELECT order_id FROM orders_delivery"
                " WHERE order_id = ANY(%s) GROUP BY order_id HAVING count(*) > 1) t",
                (ids,),
            )[0][0],
            "deliveries with more keys than quantity": q(
                "SELECT count(*) FROM orders_delivery d JOIN orders_order o ON o.id = d.order_id"
                " WHERE d.order_id = ANY(%s) AND d.key_count > o.quantity",
                (ids,),
            )[0][0],
            "orders with more than 2 commission entries": q(
                "SELECT count(*) FROM (SELECT order_id FROM commissions_ledgerentry"
                " WHERE order_id = ANY(%s) AND kind = 'commission'"
                " GROUP BY order_id HAVING count(*) > 2) t",
                (ids,),
            )[0][0],
            "settled in time": "yes" if settled else "no",
        }
        figures |= self.key_checks(ids)
        self.res["replays"] = {"orders": n, "copies": copies, "figures": figures}

    def floor(self) -> None:
        from django.db import connection
        from floor import create_paid_orders, run_floor

        a = self.args
        template = self.lookup_email_order  # delivered: copying it leaves no pending hold
        dsn = connection.settings_dict
        runs = []
        for threads in FLOOR_THREADS:
            print(f"  floor: {threads} threads …", flush=True)
            ids = create_paid_orders(
                dsn, template_id=template["id"], count=a.floor_orders, tag=f"{threads}t"
            )
            runs.append(
                run_floor(
                    dsn,
                    product_id=self.shop.hot_id,
                    order_ids=ids,
                    threads=threads,
                    seconds=a.floor_seconds,
                    promoter_id=self.shop.promoter_id,
                    upline_id=self.shop.upline_id,
                    amount=template["amount"],
                    currency=template["currency"],
                )
            )
            print(f"    {runs[-1]['rate']:.0f} deliveries/s", flush=True)
        self.res["floor"] = runs
        self.res["task_alone"] = [self.delivery_task_alone(threads) for threads in FLOOR_THREADS]
        sat = self.res.get("saturation", {}).get("delivered_rate")
        best = max(runs, key=lambda f: f["rate"])
        alone = max(self.res["task_alone"], key=lambda f: f["rate"])
        if best["rate"]:
            # The issue's figure: the delivery task alone against the floor, same run.
            self.res["ratio_value"] = alone["rate"] / best["rate"]
        if sat and best["rate"]:
            parts = [
                f"{sat / f['rate'] * 100:.1f} % of the {f['threads']}-thread floor" for f in runs
            ]
            self.res["ratio"] = (
                f"Kami's delivery transaction alone, at its best ({alone['rate']:.0f}/s with "
                f"{alone['threads']} threads), is {alone['rate'] / best['rate'] * 100:.1f} % of "
                f"the best floor ({best['rate']:.0f}/s). The whole pipeline at saturation — "
                f"webhooks, broker, worker, emails, all on the same two cores — "
                f"({sat:.1f} orders/s) is {', '.join(parts)}."
            )

    def delivery_task_alone(self, threads: int) -> dict:
        """Kami's own delivery transaction (``payment_event_process``: the code the task runs)
        in ``threads`` threads of this process, over events already in the inbox — no HTTP, no
        broker, no other work on the machine but its email tasks. Set against the bare-SQL
        floor, it says what Kami's code adds to the same transaction."""
        import threading as th

        from django.db import connection as django_connection
        from seed import HOT

        from orders.models import PaymentEvent
        from orders.payments.processing import payment_event_process
        from orders.payments.stripe_events import build_event

        n = self.args.floor_orders // 10  # order_create is slow to set up: enough for a rate
        print(f"  delivery task alone: {threads} threads, {n} orders …", flush=True)
        orders = self.maker.make([HOT], n)
        events = PaymentEvent.objects.bulk_create(
            [
                PaymentEvent(
                    provider="stripe",
                    event_id=f"evt_alone_{threads}_{o['id']}",
                    type="checkout.session.completed",
                    payload=build_event(
                        "checkout.session.completed",
                        {
                            "id": f"cs_alone_{o['id']}",
                            "client_reference_id": o["order_no"],
                            "metadata": {"order_no": o["order_no"]},
                            "amount_total": o["amount"],
                            "currency": o["currency"].lower(),
                            "payment_status": "paid",
                            "payment_intent": f"pi_alone_{o['id']}",
                        },
                    ),
                )
                for o in orders
            ]
        )
        todo = [e.pk for e in events]
        lock = th.Lock()
        done = [0]

        def work() -> None:
            try:
                while True:
                    with lock:
                        if not todo:
                            return
                        event_id = todo.pop()
                    if payment_event_process(event_id=event_id):
                        with lock:
                            done[0] += 1
            finally:
                django_connection.close()

        pool = [th.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        seconds = time.perf_counter() - started
        rate = done[0] / seconds if seconds else 0.0
        print(f"    {rate:.0f} deliveries/s", flush=True)
        return {"threads": threads, "delivered": done[0], "seconds": seconds, "rate": rate}

    def final(self) -> None:
        rows = self.sql(
            "SELECT status, count(*) FROM orders_order WHERE order_no NOT LIKE 'FL%%'"
            " GROUP BY status ORDER BY status"
        )
        ids = list(self.paid_ids)
        undelivered = self.sql(
            "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND status <> 'delivered'", (ids,)
        )[0][0]
        unprocessed = self.sql(
            "SELECT count(*) FROM orders_paymentevent WHERE processed_at IS NULL"
        )[0][0]
        ledger = self.sql(
            "SELECT count(*) FROM (SELECT o.id FROM orders_order o LEFT JOIN"
            " commissions_ledgerentry l ON l.order_id = o.id AND l.kind = 'commission'"
            " WHERE o.status = 'delivered' AND o.order_no NOT LIKE 'FL%%'"
            " GROUP BY o.id HAVING count(l.id) <> 2) t"
        )[0][0]
        self.res["final"] = {
            "orders by status (all but the floor's)": ", ".join(f"{s}: {n}" for s, n in rows),
            "paid by webhook (200) but not delivered": undelivered,
            "payment events never processed": unprocessed,
            "delivered orders without exactly 2 commission entries": ledger,
            "most PostgreSQL connections on the bench database at once (sampled every 0.2 s)": (
                self.watch.most if self.watch else "–"
            ),
        }

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        from django.db import connection
        from seed import HOT, OrderMaker, enabled_risk_rules, seed

        from shop.processes import database_url

        a = self.args
        url = database_url(connection.settings_dict)
        self.env["DATABASE_URL"] = url
        started = time.monotonic()
        self.shop = seed(hot_keys=a.hot_keys, spread_keys=a.spread_keys, race_keys=50)
        self.res["setup"] = {
            "keys imported": ", ".join(f"{k}: {v:,}" for k, v in self.shop.keys.items() if k == HOT)
            + f"; 10 spread products: {a.spread_keys:,} each; race: 50",
            "key import time": f"{self.shop.import_seconds:.1f} s",
            "seed time (products, keys, VACUUM)": f"{time.monotonic() - started:.1f} s",
            "risk rules on": "; ".join(enabled_risk_rules()),
            "buyers": "distinct email and client IP per order (X-Forwarded-For over HTTP, "
            "TRUST_X_FORWARDED_FOR=1); max unpaid per email/IP raised to 10^6",
            "referral": "every order ref=BENCH, whose upline is BENCHUP: two commission entries",
        }
        self.stack = Stack(root=ROOT, env=self.env, config=self.config, logdir=self.logdir)
        try:
            self.stack.start()
            self.gen = LoadClient(
                port=self.stack.port,
                secret=self.env["STRIPE_WEBHOOK_SECRET"],
                env=self.env,
                log=self.logdir / "loadgen.log",
            )
            self.watch = ConnectionWatch(connection.settings_dict)
            self.watch.start()
            self.maker = OrderMaker(
                env=self.env, processes=ORDER_MAKERS, run=self.env["KAMI_BENCH_RUN"]
            )
            self.stack.wait_http()
            print("stack up; warming up …", flush=True)
            self.warm_up()
            steps = a.steps
            timings = self.res["step seconds"] = {
                "database, seed, stack start, warm-up": time.monotonic() - started
            }
            for name, label, step in (
                ("ladder", "open loop, hot", lambda: self.ladder("hot", [HOT])),
                ("ladder", "open loop, spread", lambda: self.ladder("spread", self.shop.spread)),
                ("saturation", "saturation", self.saturation),
                ("closed", "closed loop", self.closed_loop),
                ("lookup", "lookups", self.lookups),
                ("race", "race", self.race),
                ("replay", "replays", self.replays),
                ("floor", "bare-SQL floor", self.floor),
            ):
                if name in steps:
                    t0 = time.monotonic()
                    step()
                    timings[label] = time.monotonic() - t0
            self.final()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for closer in (
            lambda: self.watch.stop(),
            lambda: self.gen.close(),
            lambda: self.maker.close(),
            lambda: self.stack.stop(),
        ):
            with contextlib.suppress(Exception):  # best effort; the next one must still run
                closer()


class ConnectionWatch(threading.Thread):
    """The most connections the bench database had at once, sampled on its own connection."""

    def __init__(self, dsn: dict):
        super().__init__(daemon=True)
        from floor import connect

        self.conn = connect(dsn)
        self.conn.autocommit = True
        self.most = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(Exception), self.conn.cursor() as cur:
            while not self._stop_event.wait(0.2):
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                self.most = max(self.most, cur.fetchone()[0])

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.conn.close()


class CpuProbe:
    """CPU per process group: gunicorn, celery, postgres, redis, the load generator, the bench."""

    def __init__(self, bench: Bench):
        from cpu import CpuMeter

        self.bench, self.meter = bench, CpuMeter()

    def groups(self) -> dict[str, list[int]]:
        stack = self.bench.stack.pids()
        rows = self.bench.sql(
            "SELECT pid, datname = current_database(), backend_type FROM pg_stat_activity"
        )
        groups = {
            "gunicorn (master + workers)": stack.get("gunicorn", []),
            "celery worker (all processes)": stack.get("celery", []),
        }
        if "celery-notify" in stack:
            groups["celery notify worker (emails)"] = stack["celery-notify"]
        groups |= {
            "postgres backends (bench database)": [pid for pid, ours, _ in rows if ours],
            "postgres background (WAL writer, checkpointer …; machine-wide)": [
                pid for pid, ours, kind in rows if ours is None and kind != "client backend"
            ],
            "redis": [self.bench.redis_pid] if self.bench.redis_pid else [],
            "load generator": [self.bench.gen.pid],
            "bench process (polls the database)": [os.getpid()],
        }
        return groups

    def start(self) -> None:
        self.meter.start(self.groups())

    def stop(self) -> dict:
        seconds, used = self.meter.stop(self.groups())
        ours = sum(used.values())
        return {
            "seconds": seconds,
            "groups": used
            | {
                "total of the above": ours,
                "everything else on the machine": max(0.0, self.meter.machine - ours),
                f"whole machine ({len(os.sched_getaffinity(0))} cores = "
                f"{len(os.sched_getaffinity(0)) * 100} %)": self.meter.machine,
            },
        }


def targets(res: dict) -> list[list]:
    def ladder_p99(rate: float) -> tuple[str, bool | None]:
        parts, met = [], []
        for kind in ("hot", "spread"):
            row = next((r for r in res.get("ladder", {}).get(kind, []) if r["rate"] == rate), None)
            if row is None:
                parts.append(f"{kind}: not reached")
                met.append(False)
            else:
                parts.append(f"{kind}: {row['p99']:.0f} ms")
                met.append(row["p99"] < (100 if rate == 100 else 250) and not row.get("stop"))
        return ", ".join(parts), all(met)

    def yes(ok) -> str:
        return "–" if ok is None else ("yes" if ok else "**no**")

    out = []
    sat = res.get("saturation", {}).get("delivered_rate")
    if sat is not None:
        out.append(["delivered orders/s at saturation", "≥ 300", f"{sat:.1f}", yes(sat >= 300)])
    if res.get("ladder"):
        for rate, limit in ((100, "< 100 ms"), (200, "< 250 ms")):
            text, ok = ladder_p99(rate)
            out.append([f"webhook → delivered p99 at {rate}/s", limit, text, yes(ok)])
    if "lookups" in res:
        p50 = res["lookups"]["email"]["p50"]
        out.append(["lookup p50 (email)", "< 5 ms", f"{p50:.1f} ms", yes(p50 < 5)])
    if "closed_loop" in res:
        loop = res["closed_loop"]
        out.append(
            [
                "closed loop, 16 buyers",
                "≥ 100 orders/s",
                f"{loop['rate']:.1f}",
                yes(loop["rate"] >= 100),
            ]
        )
        out.append(
            [
                "closed loop pay → key readable p95",
                "< 100 ms",
                f"{loop['p95']:.0f} ms",
                yes(loop["p95"] < 100),
            ]
        )
    if "ratio_value" in res:
        r = res["ratio_value"]
        out.append(
            [
                "delivery task alone / bare-SQL floor (best)",
                "≥ 50 %",
                f"{r * 100:.1f} %",
                yes(r >= 0.5),
            ]
        )
    return out


def mail_queue(option: str, task_queue: str) -> str | None:
    """The queue the notify worker consumes, or None for no worker of its own."""
    if option == "none":
        return None
    if option != "auto":
        return option
    try:
        from shop.celery import notify_queue
    except ImportError:  # a Kami without a side-effect queue
        return None
    return notify_queue(task_queue)


def drop_stale_databases(postgres_url: str) -> list[str]:
    """Databases of earlier runs killed too hard to clean up: dead pid and no connection."""
    import environ

    dsn = environ.Env.db_url_config(postgres_url)
    import psycopg2

    conn = psycopg2.connect(
        dbname="postgres", user=dsn.get("USER") or None, host=dsn.get("HOST"), port=dsn.get("PORT")
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT d.datname FROM pg_database d WHERE d.datname LIKE %s AND NOT EXISTS"
                " (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                (DB_PREFIX + "%",),
            )
            names = [n for (n,) in cur.fetchall()]
    finally:
        conn.close()
    dropped = []
    for name in names:
        pid = name.removeprefix(DB_PREFIX).split("_")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            force_drop_database(dsn | {"NAME": name})
            dropped.append(name)
    return dropped


def redis_info(url: str) -> tuple[str, int | None]:
    import redis

    info = redis.Redis.from_url(url).info("server")
    return info.get("redis_version", "?"), info.get("process_id")


def redis_cleanup(url: str, run: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"*kami-bench-{run}*", count=1000):
        client.delete(key)


def main() -> int:
    args = parse_args()
    run = f"{os.getpid()}_{secrets.token_hex(3)}"
    env = bench_environment(
        postgres=args.postgres, redis=args.redis, db_name=f"{DB_PREFIX}{run}", run=run
    )
    os.environ.update(env)
    env = dict(os.environ)
    configure()

    config = StackConfig(
        web_workers=args.web_workers,
        pool=args.pool,
        concurrency=args.concurrency,
        mail_queue=mail_queue(args.mail_queue, f"kami-bench-{run}"),
        mail_pool=args.mail_pool,
        mail_concurrency=args.mail_concurrency,
    )
    connections = config.db_connections() + ORDER_MAKERS + 2 + max(FLOOR_THREADS)
    if connections > MAX_CONNECTIONS:
        print(
            f"this configuration may open {connections} PostgreSQL connections; the bench "
            f"keeps to {MAX_CONNECTIONS} (the machine has 100 for everyone)",
            file=sys.stderr,
        )
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    logdir = Path(tempfile.mkdtemp(prefix=f"kami-bench-{run}-"))
    redis_version, redis_pid = redis_info(args.redis)
    command = "bench/load.py " + " ".join(sys.argv[1:])
    bench = Bench(args, env, logdir)
    bench.config = config
    bench.redis_pid = redis_pid
    stale = drop_stale_databases(args.postgres)
    if stale:
        print(f"dropped databases of dead runs: {', '.join(stale)}")
    from cpu import TICKS, machine_busy_ticks

    before = machine_busy_ticks()
    time.sleep(1.0)
    busy_before = 100.0 * (machine_busy_ticks() - before) / TICKS
    failure = None
    run_started = time.monotonic()
    meta_machine: dict = {}
    print(f"Kami load benchmark: {config.describe()}; logs in {logdir}", flush=True)
    try:
        with throwaway_database():
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                pg_version = cursor.fetchone()[0]
            meta_machine = machine(
                pg_version=pg_version, redis_version=redis_version, busy_before=busy_before
            )
            bench.run()
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception:
        failure = traceback.format_exc()
        for name in ("gunicorn", "celery", "loadgen"):
            tail = Stack.log_tail(bench.stack, name) if hasattr(bench, "stack") else ""
            if tail.strip():
                failure += f"\n--- {name} log (last lines) ---\n{tail}"
    finally:
        try:
            redis_cleanup(args.redis, run)
        except Exception as exc:
            print(f"redis cleanup failed: {exc}", file=sys.stderr)
    res = bench.res
    res["meta"] = {
        "quick": args.quick,
        "machine": meta_machine,
        "run": {
            "date": now_utc(),
            "git commit": git_commit(ROOT),
            "command": f"`{command.strip()}`",
            "pools": config.describe(),
            "settings": "DEBUG=0, CONN_MAX_AGE default (60 s), EMAIL_URL=dummymail://, "
            "LOG_LEVEL=WARNING, Redis broker and cache",
            "open-loop rates": ", ".join(f"{r:g}" for r in args.rates)
            + f" /s, {args.phase_seconds:g} s each (≤ {args.phase_max_orders:,} orders)",
            "duration": f"{time.monotonic() - run_started:.0f} s",
            "load average at the end": loadavg(),
        },
    }
    cores = len(os.sched_getaffinity(0))
    if busy_before > 25 * cores:
        res["meta"]["busy_warning"] = (
            f"The machine was busy before this run started ({busy_before:.0f} % of one core "
            f"of {cores * 100} %, load average {meta_machine.get('load average at start')}): "
            "other processes competed for the CPU, so these figures understate Kami."
        )
    if failure:
        res["failure"] = failure
    else:
        res["targets"] = targets(res)
    text = render(res)
    print("\n" + text)
    if args.output != "-" and not failure:
        # bench/priority.py's, bench/push_latency.py's and bench/reports.py's sections stay.
        previous = Path(args.output).read_text() if Path(args.output).exists() else ""
        Path(args.output).write_text(keep_sections(previous, text))
        print(f"written to {args.output}")
    if failure:
        print(f"process logs kept in {logdir}", file=sys.stderr)
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
