"""The core loop on SQLite, through HTTP: checkout → signed webhook → delivery → lookup, and
the demo shop ``make run`` seeds (the database itself was built by the migrations).

Transactions really commit (``transaction=True``), so the tasks run in-process after the
commit exactly as they do under ``make run`` without Redis.
"""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from cardpool.models import CardKey
from orders.models import Delivery, Order, OrderStatus, PaymentEvent
from tests.factories import stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_database_is_a_sqlite_file_in_wal_mode_with_immediate_transactions():
    assert connection.vendor == "sqlite"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA database_list")
        assert cursor.fetchone()[2].endswith("test-kami.sqlite3")


def test_checkout_signed_webhook_delivers_and_lookup_shows_the_keys(client):
    stock_product(4, slug="sqlite-loop")  # 2 of 4 within the hold share: they are held

    created = client.post(
        "/api/v1/orders",
        {"product": "sqlite-loop", "quantity": 2, "email": "Buyer@Example.com"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    order_no = body["order_no"]
    assert body["status"] == "pending" and body["amount"] == "19.80"
    assert body["pay_url"].endswith(f"/pay/sandbox/{order_no}")
    order = Order.objects.get(order_no=order_no)
    assert CardKey.objects.filter(order=order, status=CardKey.Status.RESERVED).count() == 2

    event = completed_event(order)
    paid = post_event(client, event)
    assert paid.status_code == 200 and paid.json() == {"received": True, "duplicate": False}

    lookup = client.get(f"/api/v1/orders/{order_no}", {"email": "buyer@example.com"})
    assert lookup.status_code == 200, lookup.content
    result = lookup.json()
    assert result["status"] == "delivered" and result["paid_at"] and result["delivered_at"]
    assert sorted(result["keys"]) == ["sqlite-loop-KEY-0", "sqlite-loop-KEY-1"]
    assert PaymentEvent.objects.get().processed_at is not None
    assert len(mail.outbox) == 1 and "sqlite-loop-KEY-0" in mail.outbox[0].body

    replay = post_event(client, event)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert CardKey.objects.filter(status=CardKey.Status.SOLD).count() == 2
    assert Delivery.objects.count() == 1

    wrong = client.get(f"/api/v1/orders/{order_no}", {"email": "other@example.com"})
    assert wrong.status_code == 404


def test_storefront_checkout_sandbox_pay_and_the_order_page_shows_the_key(client):
    stock_product(1, slug="sqlite-page")

    checkout = client.post("/p/sqlite-page", {"email": "page@example.com", "quantity": "1"})
    assert checkout.status_code == 302, checkout.content
    pay_url = checkout["Location"]
    assert "/pay/sandbox/" in pay_url
    assert client.get(pay_url).status_code == 200

    paid = client.post(pay_url)
    assert paid.status_code == 302
    order_page = client.get(paid["Location"])
    assert order_page.status_code == 200
    assert "sqlite-page-KEY-0" in order_page.content.decode()
    assert Order.objects.get().status == OrderStatus.DELIVERED


def test_the_last_key_sold_refuses_the_next_checkout_with_409(client):
    stock_product(1, slug="sqlite-last")
    order = {"product": "sqlite-last", "quantity": 1, "email": "first@example.com"}
    first = client.post("/api/v1/orders", order, content_type="application/json")
    assert first.status_code == 201 and first.json()["held_until"]
    # Only held, not sold: the next buyer still gets an order, without a hold.
    second = client.post(
        "/api/v1/orders", order | {"email": "second@example.com"}, content_type="application/json"
    )
    assert second.status_code == 201 and second.json()["held_until"] is None
    paid = post_event(client, completed_event(Order.objects.get(order_no=first.json()["order_no"])))
    assert paid.status_code == 200
    refused = client.post(
        "/api/v1/orders",
        order | {"email": "third@example.com"},
        content_type="application/json",
    )
    assert refused.status_code == 409 and refused.json()["code"] == "out_of_stock"


def test_seed_demo_twice_then_its_shop_sells_and_its_owner_logs_in(client, settings):
    settings.DEBUG = True  # seed_demo refuses to create well-known logins otherwise
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent

    products = client.get("/api/v1/products").json()
    assert len(products) >= 3 and all(p["stock"] > 0 for p in products)
    slug = products[0]["slug"]
    order = {"product": slug, "quantity": 1, "email": "demo@example.com", "ref": "DEMO"}
    created = client.post("/api/v1/orders", order, content_type="application/json")
    assert created.status_code == 201, created.content
    paid = client.post(created.json()["pay_url"])
    assert paid.status_code == 302
    assert Order.objects.get(order_no=created.json()["order_no"]).status == OrderStatus.DELIVERED

    assert client.login(username="admin", password="admin")
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/orders/order/").status_code == 200
