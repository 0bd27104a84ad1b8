"""Racing buyers and racing webhooks, with real threads against PostgreSQL.

Each thread has its own database connection and really commits, so these tests exercise the
row locks, SKIP LOCKED and the constraints — not a simulation of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from cardpool.models import CardKey
from orders.models import Delivery, Order, OrderStatus
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import encode, sign_payload
from orders.services import CheckoutRequest, order_create
from shop.errors import KamiError
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BUYERS = 20
KEYS = 5


def run_concurrently(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def pay(order: Order) -> None:
    payload = encode(completed_event(order))
    payment_event_receive(
        payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    )


def assert_each_key_sold_once(product, expected: int) -> None:
    sold = CardKey.objects.filter(product=product, status=CardKey.Status.SOLD)
    assert sold.count() == expected
    assert len(set(sold.values_list("order_id", flat=True))) == expected  # one key per order
    per_order = Counter(sold.values_list("order_id", flat=True))
    assert all(count == 1 for count in per_order.values())
    assert Delivery.objects.filter(order__product=product).count() == expected


def test_twenty_buyers_five_keys_with_holds():
    product = stock_product(KEYS, slug="race")

    def checkout(i: int) -> Order:
        return order_create(
            req=CheckoutRequest(
                product="race",
                quantity=1,
                email=f"buyer{i}@example.com",
                client_ip=f"198.51.100.{i + 1}",
            )
        )

    results = run_concurrently(BUYERS, checkout)
    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, KamiError)]
    assert len(orders) == KEYS, results
    assert len(refused) == BUYERS - KEYS and {e.code for e in refused} == {"out_of_stock"}

    run_concurrently(len(orders), lambda i: pay(orders[i]))

    statuses = Counter(Order.objects.filter(product=product).values_list("status", flat=True))
    assert statuses == {OrderStatus.DELIVERED: KEYS}
    assert_each_key_sold_once(product, KEYS)


def test_twenty_buyers_five_keys_every_hold_lapsed_before_payment():
    product = stock_product(KEYS, slug="race")
    lapsed = timezone.now() - timedelta(seconds=1)
    orders = [
        OrderFactory(product=product, status=OrderStatus.EXPIRED, hold_expires_at=lapsed)
        for _ in range(BUYERS)
    ]
    results = run_concurrently(BUYERS, lambda i: pay(orders[i]))
    assert not [r for r in results if isinstance(r, Exception)], results

    statuses = Counter(Order.objects.filter(product=product).values_list("status", flat=True))
    assert statuses == {OrderStatus.DELIVERED: KEYS, OrderStatus.BACKORDERED: BUYERS - KEYS}
    assert_each_key_sold_once(product, KEYS)


def test_the_same_event_delivered_by_many_webhooks_at_once_delivers_once():
    product = stock_product(3, slug="race")
    order = OrderFactory(product=product, quantity=2)
    payload = encode(completed_event(order))
    header = sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    results = run_concurrently(
        8, lambda i: payment_event_receive(payload=payload, signature=header)
    )
    assert [r for r in results if isinstance(r, tuple) and r[1]].__len__() == 1, results
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order).count() == 2


def test_different_events_for_one_order_racing_deliver_once():
    product = stock_product(4, slug="race")
    order = OrderFactory(product=product, quantity=2)
    run_concurrently(6, lambda i: pay(order))
    assert CardKey.objects.filter(order=order).count() == 2
    assert Delivery.objects.filter(order=order).count() == 1


def test_unpaid_limit_holds_under_concurrency():
    stock_product(20, slug="race")

    def checkout(i: int):
        return order_create(
            req=CheckoutRequest(
                product="race",
                quantity=1,
                email="same@example.com",
                client_ip=f"198.51.100.{i + 1}",
            )
        )

    results = run_concurrently(10, checkout)
    assert sum(isinstance(r, Order) for r in results) == 2
    assert {r.code for r in results if isinstance(r, KamiError)} == {"too_many_unpaid"}
