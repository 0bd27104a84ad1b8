"""Racing buyers and racing webhooks on SQLite, with real threads and real commits.

SQLite has no row locks (``select_for_update`` and ``SKIP LOCKED`` do nothing there): the
IMMEDIATE transactions of ``shop/settings.py`` serialise writers, WAL lets readers on, and the
conditional UPDATEs and constraints keep the stock exact. Every thread has its own connection
to the database file; nothing may crash with "database is locked" or a 500.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.conf import settings
from django.test import Client

from cardpool.models import CardKey
from orders.models import Delivery, Order, OrderStatus
from orders.payments.stripe_events import encode, sign_payload
from shop.models import ShopSettings
from tests.concurrency import run_concurrently
from tests.factories import stock_product
from tests.stripe_helpers import WEBHOOK_URL, completed_event, post_event

pytestmark = pytest.mark.django_db(transaction=True)

BUYERS = 10
KEYS = 3


def checkout(i: int):
    """One buyer's checkout through the API, from an address of its own."""
    return Client(REMOTE_ADDR=f"198.51.100.{i + 1}").post(
        "/api/v1/orders",
        {"product": "sqlite-race", "quantity": 1, "email": f"buyer{i}@example.com"},
        content_type="application/json",
    )


def test_ten_buyers_race_for_the_last_three_keys_then_pay_at_once():
    """Holds go up to the hold share (one of three keys), the other buyers get orders without
    a hold; all pay at once: three are served, one key each, and the rest wait as backorders."""
    product = stock_product(KEYS, slug="sqlite-race")
    ShopSettings.objects.update_or_create(pk=1, defaults={"max_unpaid_per_network": 1000})

    responses = run_concurrently(BUYERS, checkout)
    errors = [r for r in responses if isinstance(r, Exception)]
    assert not errors, errors
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: BUYERS}, [r.content for r in responses]
    held = [r.json()["order_no"] for r in responses if r.json()["held_until"]]
    assert len(held) == 1
    reserved = CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED)
    assert list(reserved.values_list("order__order_no", flat=True)) == held

    orders = list(Order.objects.all())
    paid = run_concurrently(len(orders), lambda i: post_event(Client(), completed_event(orders[i])))
    assert [getattr(r, "status_code", r) for r in paid] == [200] * BUYERS

    assert Counter(Order.objects.values_list("status", flat=True)) == {
        OrderStatus.DELIVERED: KEYS,
        OrderStatus.BACKORDERED: BUYERS - KEYS,
    }
    assert Order.objects.get(order_no=held[0]).status == OrderStatus.DELIVERED
    sold = CardKey.objects.filter(product=product, status=CardKey.Status.SOLD)
    assert sold.count() == KEYS
    assert set(Counter(sold.values_list("order_id", flat=True)).values()) == {1}
    assert Delivery.objects.count() == KEYS


def test_the_same_event_posted_by_many_webhooks_at_once_delivers_once():
    product = stock_product(2, slug="sqlite-race")
    response = checkout(0)
    assert response.status_code == 201, response.content
    order = Order.objects.get(order_no=response.json()["order_no"])
    payload = encode(completed_event(order))
    header = sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)

    def deliver(_: int):
        return Client().post(
            WEBHOOK_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )

    responses = run_concurrently(8, deliver)
    assert [getattr(r, "status_code", r) for r in responses] == [200] * 8
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(product=product, status=CardKey.Status.SOLD).count() == 1
    assert Delivery.objects.count() == 1
