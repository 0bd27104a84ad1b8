"""``make run``'s shape exactly — SQLite, no Redis, tasks in-process — serves the order page's
WebSocket and pushes the delivery through the in-memory channel layer of its one process."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from websockets.sync.client import connect

from tests.factories import OrderFactory, stock_product
from tests.serving import serving
from tests.shop.test_serve_websockets import post_webhook, refused_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_serve_on_sqlite_pushes_the_delivery(tmp_path):
    order = OrderFactory(product=stock_product(1, slug="sqlite-ws"), email="lite@example.com")
    database = f"sqlite:///{connection.settings_dict['NAME']}"
    with serving(tmp_path / "serve.log", DATABASE_URL=database, WEB_THREADS="2") as process:
        base = f"ws://127.0.0.1:{process.port}/ws/orders/{order.order_no}"
        assert refused_status(base) == 403
        with connect(f"{base}?email=lite@example.com", open_timeout=10) as socket:
            assert json.loads(socket.recv(timeout=10))["status"] == "pending"
            assert post_webhook(process.port, order) == 200
            assert json.loads(socket.recv(timeout=30))["status"] == "delivered"
