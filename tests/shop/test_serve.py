"""``manage.py serve`` (what ``make run`` starts) under 200 concurrent buyers, on PostgreSQL.

The server runs as a real subprocess on the test database; 200 clients, each on its own TCP
connection, open their connections first and then all send at once. Nothing may be reset or
answered 5xx, every checkout is an order (held while the product's hold share lasts), and
the server's PostgreSQL sessions (tagged with an ``application_name``) never exceed its
request threads.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
import uuid

import pytest
from django.db import connection, connections

from cardpool.models import CardKey
from orders.models import Order
from shop.models import ShopSettings
from shop.server import web_threads
from tests.factories import stock_product
from tests.serving import serving

BUYERS = 200
WEB_THREADS = 4  # below the default (8), so an ignored WEB_THREADS shows up as extra sessions
KEYS = 50  # fewer than the checkouts below, so some must go without a hold


def _sessions(cursor, application_name: str) -> int:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        [application_name],
    )
    return cursor.fetchone()[0]


@pytest.fixture
def serve_process(tmp_path):
    """``manage.py serve`` on a free port and the test database; eager tasks, no Redis."""
    application_name = f"kami-serve-test-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "serve.log"
    with serving(
        log_path,
        database_query=f"application_name={application_name}",
        WEB_THREADS=str(WEB_THREADS),
        WEB_ACCESS_LOG="0",
        TRUST_X_FORWARDED_FOR="1",
    ) as process:
        process.application_name = application_name
        process.log_path = log_path
        yield process


def _buyer(i: int, port: int, slug: str, barrier: threading.Barrier, results: list) -> None:
    kind = ("home", "products", "checkout")[i % 3]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"X-Forwarded-For": f"10.77.{i // 250}.{i % 250}", "Connection": "close"}
    try:
        try:
            conn.connect()
        finally:
            barrier.wait(timeout=60)  # every connection is open before anyone sends
        if kind == "checkout":
            body = json.dumps({"product": slug, "quantity": 1, "email": f"buyer{i}@example.com"})
            headers["Content-Type"] = "application/json"
            conn.request("POST", "/api/v1/orders", body, headers)
        else:
            conn.request("GET", "/" if kind == "home" else "/api/v1/products", headers=headers)
        response = conn.getresponse()
        data = response.read()
        code = json.loads(data).get("code") if kind == "checkout" and data else None
        results.append((kind, response.status, code))
    except Exception as exc:  # a reset, a refused or dropped connection: all failures here
        results.append((kind, type(exc).__name__, repr(exc)))
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_200_concurrent_buyers_bounded_connections_no_resets(serve_process):
    product = stock_product(KEYS, slug="serve-load")
    shop = ShopSettings.load()
    shop.max_unpaid_per_email = shop.max_unpaid_per_ip = shop.max_unpaid_per_network = 1000
    shop.save()

    seen = []
    stop = threading.Event()

    def sample() -> None:
        try:
            with connection.cursor() as cursor:  # this thread's own connection
                while not stop.is_set():
                    seen.append(_sessions(cursor, serve_process.application_name))
                    time.sleep(0.02)
        finally:
            connections.close_all()

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list = []
    barrier = threading.Barrier(BUYERS)
    buyers = [
        threading.Thread(
            target=_buyer, args=(i, serve_process.port, product.slug, barrier, results)
        )
        for i in range(BUYERS)
    ]
    try:
        for buyer in buyers:
            buyer.start()
        for buyer in buyers:
            buyer.join()
    finally:
        stop.set()
        sampler.join()
    with connection.cursor() as cursor:
        after = _sessions(cursor, serve_process.application_name)

    log = serve_process.log_path.read_text()
    assert len(results) == BUYERS
    failures = [r for r in results if not isinstance(r[1], int) or r[1] >= 500]
    assert not failures, f"{len(failures)} failed, e.g. {failures[:5]}; log {log[-3000:]}"
    outcomes = collections.Counter(results)
    checkouts = {(s, c): n for (kind, s, c), n in outcomes.items() if kind == "checkout"}
    n_checkouts = len(range(2, BUYERS, 3))
    # Every checkout is an order: held while the product's hold share lasts (half of it),
    # then without a hold (orders.holds): buyers racing for the last keys are never refused.
    assert checkouts == {(201, None): n_checkouts}, outcomes
    assert outcomes[("home", 200, None)] + outcomes[("products", 200, None)] == (
        BUYERS - n_checkouts
    ), outcomes
    orders = Order.objects.filter(product=product)
    assert orders.count() == n_checkouts
    assert orders.filter(holds_keys=True).count() == KEYS // 2
    held = CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED)
    assert held.count() == KEYS // 2

    # One persistent connection per request thread (+1 for the periodic-task thread).
    assert seen and max(seen) > 0, "no session of the server was seen: the tag is broken"
    assert max(seen) <= WEB_THREADS + 1, f"sessions seen: {collections.Counter(seen)}"
    assert after <= WEB_THREADS + 1

    serve_process.terminate()  # SIGTERM: graceful, like Ctrl-C
    assert serve_process.wait(timeout=30) == 0, log
    with connection.cursor() as cursor:
        for _ in range(100):
            if _sessions(cursor, serve_process.application_name) == 0:
                break
            time.sleep(0.1)
        assert _sessions(cursor, serve_process.application_name) == 0


def test_web_threads_from_the_environment(monkeypatch):
    monkeypatch.delenv("WEB_THREADS", raising=False)
    assert web_threads() == 8
    monkeypatch.setenv("WEB_THREADS", "12")
    assert web_threads() == 12
    for bad in ("0", "-1", "many"):
        monkeypatch.setenv("WEB_THREADS", bad)
        with pytest.raises(ValueError, match="WEB_THREADS"):
            web_threads()
