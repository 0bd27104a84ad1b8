"""Webhook → "delivered" on the order page's WebSocket: how soon a buyer's page knows.

``manage.py serve`` — what ``make run`` starts, DEBUG off — on a throw-away PostgreSQL
database, twice: without Redis (tasks in the web process after commit, the in-memory channel
layer) and with Redis (serve's Celery worker delivers, the Redis channel layer carries the
message to the web process). For each order, one after the other: open
``/ws/orders/{order_no}?email=…``, read the status it sends on connect, post the signed
``checkout.session.completed`` webhook, and time until the socket says ``delivered``.

Writes its section of docs/benchmarks.md (``--output -`` prints only).

    .venv/bin/python bench/push_latency.py [--orders 200] [--output PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import ROOT, configure, throwaway_database
from load import redis_cleanup
from report import git_commit, loadavg, now_utc, percentile, table, write_section
from stack import _die_with_parent, free_port


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=200, help="orders per run")
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    return p.parse_args()


def start_serve(env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=env | {"PORT": str(port), "HOST": "127.0.0.1", "SITE_URL": f"http://127.0.0.1:{port}"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("serve did not answer")


def stop(process: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def measure(port: int, orders: list, secret: str) -> dict:
    from websockets.sync.client import connect

    from orders.models import Order
    from orders.payments.stripe_events import (
        build_event,
        checkout_session_object,
        encode,
        sign_payload,
    )

    push, http_ms, committed = [], [], []
    origin = f"http://127.0.0.1:{port}"
    for order in orders:
        url = f"ws://127.0.0.1:{port}/ws/orders/{order.order_no}?email={order.email}"
        with connect(url, origin=origin, open_timeout=10) as socket:
            first = json.loads(socket.recv(timeout=10))
            assert first["status"] == "pending", first
            payload = encode(
                build_event("checkout.session.completed", checkout_session_object(order))
            )
            header = sign_payload(payload, secret)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            started, sent_at = time.perf_counter(), time.time()
            conn.request(
                "POST",
                "/payments/stripe/webhook",
                body=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
            status = conn.getresponse().status
            http_ms.append((time.perf_counter() - started) * 1000)
            conn.close()
            assert status == 200, status
            while True:
                message = json.loads(socket.recv(timeout=30))
                if message["status"] == "delivered":
                    push.append((time.perf_counter() - started) * 1000)
                    break
            delivered_at = Order.objects.values_list("delivered_at", flat=True).get(pk=order.pk)
            committed.append((delivered_at.timestamp() - sent_at) * 1000)
    return {
        "n": len(push),
        "p50": percentile(push, 50),
        "p95": percentile(push, 95),
        "max": max(push),
        "http_p50": percentile(http_ms, 50),
        "committed_p50": percentile(committed, 50),
    }


def main() -> int:
    args = parse_args()
    from cryptography.fernet import Fernet

    run = f"{os.getpid()}_{secrets.token_hex(3)}"
    secret = f"whsec_bench_{secrets.token_hex(16)}"
    base = {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": args.postgres,
        "KAMI_TEST_DB_NAME": f"bench_kami_push_{run}",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "STRIPE_WEBHOOK_SECRET": secret,
        "KAMI_TASK_QUEUE": f"kami-bench-{run}",
        "KAMI_CACHE_PREFIX": f"kami-bench-{run}",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "WEB_ACCESS_LOG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_PAYMENTS": "1",
        "REDIS_URL": "",
    }
    os.environ.update(base)
    configure()
    logdir = Path(tempfile.mkdtemp(prefix=f"kami-bench-push-{run}-"))
    runs = {
        "without Redis (in-process tasks, in-memory layer)": {
            "REDIS_URL": "",
            "CELERY_TASK_ALWAYS_EAGER": "1",
        },
        "with Redis (serve's Celery worker, Redis channel layer)": {
            "REDIS_URL": args.redis,
            "CELERY_TASK_ALWAYS_EAGER": "0",
        },
    }
    results: dict[str, dict] = {}
    loads = (loadavg(),)
    try:
        with throwaway_database():
            from django.db import connection

            from cardpool.services import keys_import
            from orders.services import CheckoutRequest, order_create
            from shop.models import Product, ShopSettings
            from shop.processes import database_url

            ShopSettings.objects.update_or_create(
                pk=1, defaults={"max_unpaid_per_email": 10**6, "max_unpaid_per_ip": 10**6}
            )
            product = Product.objects.create(slug="push", name="Push", price=990, currency="USD")
            total = args.orders * len(runs) + 10
            keys_import(product=product, text="\n".join(f"PUSH-{i:07d}" for i in range(total)))
            env = dict(os.environ) | {"DATABASE_URL": database_url(connection.settings_dict)}
            for name, extra in runs.items():
                orders = [
                    order_create(
                        req=CheckoutRequest(
                            product="push",
                            quantity=1,
                            email=f"push{i}.{len(results)}@example.com",
                            client_ip=f"10.9.{i // 250}.{i % 250 + 1}",
                        )
                    )
                    for i in range(args.orders)
                ]
                process, port = start_serve(env | extra, logdir / f"serve-{len(results)}.log")
                try:
                    print(f"  {name}: {len(orders)} orders …", flush=True)
                    measure(port, orders[:5], secret)  # warm-up: connections, imports
                    results[name] = measure(port, orders[5:], secret)
                finally:
                    stop(process)
                r = results[name]
                print(f"    p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms", flush=True)
    finally:
        redis_cleanup(args.redis, run)
    text = "\n".join(
        [
            '## Webhook → "delivered" pushed to the order page',
            "",
            f"`bench/push_latency.py` ({now_utc()}, commit {git_commit(ROOT)}; load average "
            f"{loads[0]} at the start, {loadavg()} at the end): `manage.py "
            "serve` (what `make run` starts; uvicorn, HTTP on its thread pool, WebSockets on "
            "Channels), DEBUG off, PostgreSQL. One buyer at a time: open "
            "`/ws/orders/{order_no}?email=…`, read the status it sends on connect, post the "
            "signed webhook, time until the socket says `delivered`.",
            "",
            table(
                [
                    "run",
                    "orders",
                    "p50",
                    "p95",
                    "max",
                    "webhook answered, p50",
                    "keys committed, p50",
                ],
                [
                    [
                        name,
                        r["n"],
                        f"{r['p50']:.1f} ms",
                        f"{r['p95']:.1f} ms",
                        f"{r['max']:.1f} ms",
                        f"{r['http_p50']:.1f} ms",
                        f"{r['committed_p50']:.1f} ms",
                    ]
                    for name, r in results.items()
                ],
            ),
            "",
            "Without Redis the delivery runs in the webhook's request thread after its commit; "
            "the push leaves on the server's event loop while that thread goes on to send the "
            "delivery email (in-process too, holding the GIL), so it lands about when the "
            "webhook's own answer does. With Redis the webhook answers once the event is "
            "stored and queued, the worker delivers, and the message reaches the page through "
            "the Redis channel layer. Keys committed: `delivered_at`, set inside the delivery "
            "transaction, a few ms before its commit.",
        ]
    )
    print("\n" + text)
    if args.output != "-":
        write_section(Path(args.output), "push-latency", text)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
