"""``manage.py serve`` (``make run``) serves the order page's WebSocket, with and without Redis:
a real server process, a real WebSocket client, a webhook over HTTP, the delivery pushed.

Without Redis the delivery runs in the server's request thread and reaches the socket through
the in-memory layer on the server's loop; with Redis a real Celery worker (started by
``serve``) delivers and publishes over Redis to the web process.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from orders.payments.stripe_events import build_event, checkout_session_object, encode, sign_payload
from shop.processes import database_url
from tests.factories import OrderFactory, stock_product
from tests.serving import ROOT, free_port, http_get, serving

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

EMAIL = "ws.buyer@example.com"


def post_webhook(port: int, order) -> int:
    payload = encode(build_event("checkout.session.completed", checkout_session_object(order)))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/payments/stripe/webhook",
            body=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET),
            },
        )
        return conn.getresponse().status
    finally:
        conn.close()


def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10).close()
    return refused.value.response.status_code


def _pushes_the_delivery(tmp_path, **env: str) -> None:
    order = OrderFactory(product=stock_product(2, slug="ws"), email=EMAIL)
    log_path = tmp_path / "serve.log"
    with serving(log_path, WEB_THREADS="2", WEB_ACCESS_LOG="1", LOG_LEVEL="INFO", **env) as p:
        base = f"ws://127.0.0.1:{p.port}/ws/orders"
        stranger = refused_status(f"{base}/{order.order_no}")
        wrong = refused_status(f"{base}/{order.order_no}?email=someone@example.com")
        unknown = refused_status(f"{base}/K000000AAAAAAAAAAAAAAAA?email={EMAIL}")
        assert stranger == wrong == unknown == 403  # refused at the handshake, alike

        with connect(f"{base}/{order.order_no}?email={EMAIL}", open_timeout=10) as socket:
            first = json.loads(socket.recv(timeout=10))
            assert first == {
                "type": "order.status",
                "order_no": order.order_no,
                "status": "pending",
            }
            assert post_webhook(p.port, order) == 200
            pushed = json.loads(socket.recv(timeout=30))
            assert pushed == {
                "type": "order.status",
                "order_no": order.order_no,
                "status": "delivered",
            }
    log = log_path.read_text()
    assert f'WebSocket /ws/orders/{order.order_no}?email=***" [accepted]' in log
    assert EMAIL not in log


def test_serve_pushes_the_delivery_without_redis(tmp_path):
    _pushes_the_delivery(tmp_path)


@pytest.mark.redis
def test_serve_pushes_the_delivery_with_redis_and_its_worker(tmp_path):
    run = uuid.uuid4().hex[:8]
    _pushes_the_delivery(
        tmp_path,
        REDIS_URL=settings.REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="0",
        KAMI_TASK_QUEUE=f"kami-test-ws-{run}",
        KAMI_CACHE_PREFIX=f"kami-test-ws-{run}",
    )
    log = (tmp_path / "serve.log").read_text()
    assert "Celery worker + beat started (Redis)." in log
    assert "process_payment_event" in log  # delivered by the worker, not in the web process


def test_the_deploy_files_run_the_asgi_app_and_the_priority_worker():
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    for text in (dockerfile, compose):
        assert "shop.asgi:application" in text and "uvicorn_worker.UvicornWorker" in text
        assert "shop.wsgi:application" not in text
    assert "priority-worker:" in compose and '"${KAMI_TASK_QUEUE:-kami}-priority"' in compose


def test_production_gunicorn_with_uvicorn_workers_serves_the_socket(tmp_path):
    """The ``web`` service's command, on the test database: two uvicorn workers under
    gunicorn, each with its own in-process layer here (no Redis), so the socket and the
    webhook meet in one worker only by chance; the test reads the status on connect."""
    order = OrderFactory(product=stock_product(1, slug="gunicorn-ws"), email=EMAIL)
    port = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "shop.settings_test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "WEB_THREADS": "2",
    }
    log = (tmp_path / "gunicorn.log").open("w")
    command = [sys.executable, "-m", "gunicorn", "shop.asgi:application"]
    command += ["--worker-class", "uvicorn_worker.UvicornWorker", "-w", "2"]
    command += ["--bind", f"127.0.0.1:{port}", "--no-control-socket", "--access-logfile", "-"]
    command += ["--logger-class", "shop.access_log.RedactingGunicornLogger"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if http_get(port, "/healthz") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        base = f"ws://127.0.0.1:{port}/ws/orders/{order.order_no}"
        assert refused_status(base) == 403
        with connect(f"{base}?email={EMAIL}", open_timeout=10) as socket:
            assert json.loads(socket.recv(timeout=10))["status"] == "pending"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "gunicorn.log").read_text()
    assert "email=***" in output and EMAIL not in output
