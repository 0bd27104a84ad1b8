"""The owner's reports on a big history: every report and the top line, timed on PostgreSQL.

    .venv/bin/python bench/reports.py [--orders 1000000] [--days 365] [--runs 7]
        [--time-zone Asia/Shanghai] [--output docs/benchmarks.md | -]

On a throw-away database (``benchdb.throwaway_database``): ``generate_history`` makes the
orders, VACUUM ANALYZE does what autovacuum would, and then each report is built ``--runs``
times after one warm-up — its data alone (the report builder: rollup refresh, every query,
every table) and as the whole admin page through Django's test client (login session,
middleware, template) — for the last 30 days and for the last 365. Beside them, the same
by-day and hour × weekday figures read straight from ``orders_order`` (the floor the rollups
are measured against), and what a report costs right after 1,000 refunds of yesterday's orders
(the refresh of the hours they touched, inside the report). Writes its section of
docs/benchmarks.md (``<!-- section reports -->``, ``report.write_section``) and leaves the
rest of the page as it is.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchdb import ROOT, configure, throwaway_database
from report import fmt, git_commit, loadavg, machine, now_utc, table, write_section

TARGET_MS = 300


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--time-zone", default="Asia/Shanghai")
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    return p.parse_args()


def timed(fn, runs: int) -> dict:
    fn()  # warm-up: caches, plans
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"median": statistics.median(samples), "max": max(samples), "min": min(samples)}


def main() -> int:
    args = parse_args()
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "DATABASE_URL": args.postgres,
            "KAMI_TEST_DB_NAME": f"bench_reports_{os.getpid()}",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "STRIPE_WEBHOOK_SECRET": f"whsec_bench_{secrets.token_hex(16)}",
            "REDIS_URL": "",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "TIME_ZONE": args.time_zone,
            # Production's static files (a manifest), collected into a directory of this run.
            "KAMI_VAR_DIR": tempfile.mkdtemp(prefix="kami-bench-reports-"),
        }
    )
    configure()
    started = time.monotonic()
    res: dict = {}
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("collectstatic", "--noinput", verbosity=0)
        with throwaway_database():
            res = run(args)
    finally:
        shutil.rmtree(os.environ["KAMI_VAR_DIR"], ignore_errors=True)
    res["duration"] = time.monotonic() - started
    text = render(args, res)
    print("\n" + text)
    if args.output != "-":
        write_section(Path(args.output), "reports", text)
        print(f"written to {args.output}")
    return 0


def run(args) -> dict:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from analytics.history import history_generate
    from analytics.periods import last_days
    from analytics.reports import Ask, report_entries
    from analytics.rollups import rollups_refresh
    from orders.models import Order

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    meta = machine(pg_version=pg_version, redis_version="not used", busy_before=0.0)
    print(f"generating {args.orders:,} orders over {args.days} days …", flush=True)
    history = history_generate(
        orders=args.orders, days=args.days, progress=lambda line: print(f"  {line}", flush=True)
    )
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    vacuum_s = time.perf_counter() - t0
    sizes = table_sizes()
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    # The owner, logged in with a second factor as the admin requires with DEBUG off.
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    currency = "USD"
    results = []
    for days in (30, 365):
        period = last_days(days)
        query = f"?{period.query()}&currency={currency}"
        for entry in report_entries():
            if entry.slug == "overview" and days != 30:
                continue

            def build(entry=entry, period=period):
                entry.build(Ask(period=period, currency=currency, now=timezone.now()))

            url = "/admin/reports/" if entry.slug == "overview" else f"/admin/reports/{entry.slug}/"

            def page(url=url, query=query):
                response = client.get(url + query)
                assert response.status_code == 200, response.status_code

            data = timed(build, args.runs)
            http = timed(page, args.runs)
            name = "Top line (today)" if entry.slug == "overview" else entry.title
            results.append({"report": name, "days": days, "data": data, "page": http})
            print(f"  {name}, {days} days: data {data['median']:.0f} ms, page "
                  f"{http['median']:.0f} ms", flush=True)  # fmt: skip
    index = timed(lambda: client.get("/admin/"), args.runs)
    csv = timed(
        lambda: client.get(
            f"/admin/reports/time/?{last_days(365).query()}&format=csv&table=by_day"
        ),
        args.runs,
    )
    floors = direct_floors(args.runs, currency)
    # 1,000 refunds of yesterday's orders, then the report that must show them.
    yesterday = timezone.now() - timedelta(days=1)
    ids = list(
        Order.objects.filter(
            created_at__gte=yesterday - timedelta(hours=12),
            created_at__lt=yesterday,
            status="delivered",
        ).values_list("pk", flat=True)[:1000]
    )
    Order.objects.filter(pk__in=ids).update(refunded_amount=1)
    time_entry = next(e for e in report_entries() if e.slug == "time")
    t0 = time.perf_counter()
    time_entry.build(Ask(period=last_days(30), currency=currency, now=timezone.now()))
    after_changes = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    rollups_refresh()
    empty_refresh = (time.perf_counter() - t0) * 1000
    return {
        "meta": meta,
        "history": history,
        "vacuum_s": vacuum_s,
        "sizes": sizes,
        "results": results,
        "index": index,
        "csv": csv,
        "floors": floors,
        "changed": len(ids),
        "after_changes_ms": after_changes,
        "empty_refresh_ms": empty_refresh,
        "load_end": loadavg(),
    }


def table_sizes() -> list[list]:
    from django.db import connection

    names = [
        "orders_order",
        "orders_delivery",
        "cardpool_cardkey",
        "commissions_ledgerentry",
        "analytics_saleshour",
        "analytics_channelhour",
        "analytics_buyersummary",
        "analytics_productviewhour",
    ]
    rows = []
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                f"SELECT COUNT(*), pg_size_pretty(pg_total_relation_size(%s)) FROM {name}",  # noqa: S608
                [name],
            )
            count, size = cursor.fetchone()
            rows.append([f"`{name}`", count, size])
    return rows


def direct_floors(runs: int, currency: str) -> list[dict]:
    """The same figures without the rollups: straight from orders_order, in SQL."""
    from django.db import connection

    from analytics.periods import last_days, shop_tz

    tz = str(shop_tz())
    out = []
    for days in (30, 365):
        period = last_days(days)
        by_day = (
            "SELECT (created_at AT TIME ZONE %s)::date, COUNT(*), "
            "SUM(COALESCE(paid_amount, amount)) FILTER (WHERE paid_at IS NOT NULL) "
            "FROM orders_order WHERE created_at >= %s AND created_at < %s AND currency = %s "
            "GROUP BY 1"
        )
        heat = (
            "SELECT extract(isodow FROM created_at AT TIME ZONE %s), "
            "extract(hour FROM created_at AT TIME ZONE %s), COUNT(*) FROM orders_order "
            "WHERE created_at >= %s AND created_at < %s AND currency = %s "
            "AND paid_at IS NOT NULL GROUP BY 1, 2"
        )

        def run_sql(sql, params):
            def go():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()

            return go

        out.append(
            {
                "days": days,
                "by_day": timed(run_sql(by_day, [tz, period.start, period.end, currency]), runs),
                "heat": timed(run_sql(heat, [tz, tz, period.start, period.end, currency]), runs),
            }
        )
    return out


def render(args, res: dict) -> str:
    h = res["history"]
    lines = [
        f"## Reports on {args.orders:,} orders",
        "",
        "Produced by `bench/reports.py` (its own section of this page: `bench/load.py` leaves it "
        "as it is). A throw-away PostgreSQL database gets the history of `manage.py "
        f"generate_history --orders {args.orders} --days {args.days}`; each report is then built "
        f"{args.runs} times after a warm-up, for the last 30 and the last 365 days. *Data* is "
        "the report builder alone (rollup refresh, every query, every table and chart); *page* "
        "is the whole `/admin/reports/…` page through Django's test client (session, "
        f"middleware, template). Target: every report and the top line under {TARGET_MS} ms.",
        "",
        table(
            ["", ""],
            [
                ["date", now_utc()],
                ["git commit", git_commit(ROOT)],
                ["command", f"`bench/reports.py --orders {args.orders} --runs {args.runs}`"],
                ["shop time zone", args.time_zone],
                ["history generated in", f"{h.seconds:.0f} s"],
                ["VACUUM (ANALYZE)", f"{res['vacuum_s']:.0f} s"],
                ["CPUs (nproc)", res["meta"]["CPUs (nproc)"]],
                ["PostgreSQL", res["meta"]["PostgreSQL"]],
                [
                    "load average at start / end",
                    f"{res['meta']['load average at start']} / {res['load_end']}",
                ],  # fmt: skip
                ["duration", f"{res['duration']:.0f} s"],
            ],
        ),
        "",
        "### Each report",
        "",
        table(
            [
                "report",
                "range",
                "data median ms",
                "data max ms",
                "page median ms",
                "page max ms",
                f"< {TARGET_MS} ms",
            ],  # fmt: skip
            [
                [
                    r["report"],
                    "today" if r["report"].startswith("Top line") else f"{r['days']} days",
                    r["data"]["median"],
                    r["data"]["max"],
                    r["page"]["median"],
                    r["page"]["max"],
                    "yes" if r["page"]["max"] < TARGET_MS else "**no**",
                ]
                for r in res["results"]
            ]
            + [
                [
                    "Admin index with the top line",
                    "today",
                    "",
                    "",
                    res["index"]["median"],
                    res["index"]["max"],
                    "yes" if res["index"]["max"] < TARGET_MS else "**no**",
                ],
                [
                    "CSV of revenue by day",
                    "365 days",
                    "",
                    "",
                    res["csv"]["median"],
                    res["csv"]["max"],
                    "yes" if res["csv"]["max"] < TARGET_MS else "**no**",
                ],
            ],  # fmt: skip
        ),
        "",
        f"Right after {res['changed']:,} refunds of yesterday's orders, the Time report (30 "
        f"days), which first recomputes the hours those orders were placed in, took "
        f"{fmt(res['after_changes_ms'])} ms; a refresh with nothing to do takes "
        f"{fmt(res['empty_refresh_ms'], 2)} ms.",
        "",
        "### The floor: the same figures straight from `orders_order`",
        "",
        "Revenue and orders by local day, and paid orders by hour × weekday, as one SQL query "
        "each over the orders table (index on `created_at`), without the rollups:",
        "",
        table(
            ["range", "by day, median ms", "hour × weekday, median ms"],
            [
                [f"{f['days']} days", f["by_day"]["median"], f["heat"]["median"]]
                for f in res["floors"]
            ],  # fmt: skip
        ),
        "",
        "### Sizes",
        "",
        table(["table", "rows", "size with indexes"], res["sizes"]),
        "",
        "### History generation, step by step",
        "",
        table(["step", "seconds"], [[k, v] for k, v in h.steps.items()]),
        "",
        "### How the reports stay fast and exact",
        "",
        "- **Rollups, read in the shop's time zone**: `analytics_saleshour` (UTC hour × "
        "product × currency: orders, paid, delivered, units, revenue, refunds, disputes, new "
        "buyers' orders, repurchases within 7 and 30 days, unsent emails, order-value bands), "
        "`analytics_shophour` (the same summed over products: a year is 8,760 rows), "
        "`analytics_channelhour` (promoter, utm_source, referrer, direct, with commissions), "
        "`analytics_latencyhour` (payment → delivery histograms), `analytics_pairhour` (bought "
        "together), `analytics_buyersummary` (first, second and last payment and lifetime value "
        "per buyer; index on currency and value for the top buyers), and per local day "
        "`analytics_salesday` and `analytics_pairday` (recut when `TIME_ZONE` changes). Every "
        "report reads only these, whatever the range; the top line's exact percentiles read "
        "today's deliveries by `analytics_delivery_created_idx`, and stock comes from the key "
        "pool's partial indexes.",
        "- **Exact when yesterday changes**: triggers on `orders_order` (insert, and updates "
        "of status, payment, delivery, refund, dispute), `orders_delivery` (insert, email sent) "
        "and `commissions_ledgerentry` (insert) append the order's id to "
        "`analytics_orderchange` in the same transaction. Every report first takes the marks it "
        "can see (`DELETE … RETURNING`) and, under an advisory lock, recomputes from the orders "
        "every hour they were placed in, every buyer they belong to and the hour of those "
        "buyers' first orders (their repurchase counts), then re-sums the local days of those "
        "hours; a writer still in flight leaves its mark for the next refresh. A refund today "
        "of an order placed yesterday at 21:10 recomputes yesterday's 21:00 bucket before the "
        "report reads it (tests: `tests/analytics/test_rollups.py`). The refresh runs with "
        "PostgreSQL's JIT off: compiling its statements cost seconds where running them costs "
        "milliseconds.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
