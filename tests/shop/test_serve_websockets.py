"""``manage.py serve`` (``make run``) serves the order page's WebSocket, with and without Redis:
a real server process, a real WebSocket client, a webhook over HTTP, the delivery pushed.

Without Redis the delivery runs in the server's request thread and reaches the socket through
the in-memory layer on the server's loop; with Redis a real Celery worker (started by
``serve``) delivers and publishes over Redis to the web process.
"""

from __future__ import annotations

import http.client
import json
import uuid

import pytest
from django.conf import settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from orders.payments.stripe_events import build_event, checkout_session_object, encode, sign_payload
from tests.factories import OrderFactory, stock_product
from tests.serving import serving

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
