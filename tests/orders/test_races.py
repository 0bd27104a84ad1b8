"""Racing buyers and racing webhooks, with real threads against PostgreSQL.

Each thread has its own database connection and really commits, so these tests exercise the
row locks, SKIP LOCKED and the constraints — not a simulation of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from cardpool.models import CardKey
from core.errors import KamiError
from orders.models import Delivery, Order, OrderStatus
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import encode, sign_payload
from orders.services import CheckoutRequest, order_create
from shop.models import ShopSettings
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BUYERS = 20
KEYS = 5


@pytest.fixture(autouse=True)
def _racers_share_a_network():
    """The racers' addresses are neighbours in one documentation /24: lift the per-network
    unpaid limit, which is not what these races are about (``test_holds.py`` races it)."""
    ShopSettings.objects.update_or_create(pk=1, defaults={"max_unpaid_per_network": 1000})


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
    """Twenty buyers race for five keys. Holds go up to the product's hold share (half, so 2);
    the others get orders without a hold (``orders.holds``): nobody is refused while keys are
    left to sell. All pay at once: every holder is served, the first payers among the rest
    get the other keys, the last ones wait as backorders, and no key is sold twice."""
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
    assert len(orders) == BUYERS, results
    holders = [o for o in orders if o.holds_keys]
    assert len(holders) == KEYS // 2
    reserved = CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED)
    assert sorted(reserved.values_list("order_id", flat=True)) == sorted(o.pk for o in holders)

    run_concurrently(len(orders), lambda i: pay(orders[i]))

    statuses = Counter(Order.objects.filter(product=product).values_list("status", flat=True))
    assert statuses == {OrderStatus.DELIVERED: KEYS, OrderStatus.BACKORDERED: BUYERS - KEYS}
    assert all(
        Order.objects.get(pk=o.pk).status == OrderStatus.DELIVERED for o in holders
    )  # the promise of a hold is kept
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
    assert CardKey.objects.filter(order=order, status="sold").count() == 2


def test_different_events_for_one_order_racing_deliver_once():
    product = stock_product(4, slug="race")
    order = OrderFactory(product=product, quantity=2)
    run_concurrently(6, lambda i: pay(order))
    assert CardKey.objects.filter(order=order, status="sold").count() == 2
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


# --- The stock model: contention per key, not per product -----------------------------------


def test_as_many_buyers_as_keys_all_get_one_none_refused():
    """Every checkout racing for the last keys gets one: picked rows are locked and skipped by
    the others (FOR UPDATE SKIP LOCKED). Without the row lock the racers pick the same first
    rows, all but one find them taken, and buyers go without a hold while keys are left.
    (A hold share of 100 %, so that every key may be held.)"""
    n = 12
    product = stock_product(n, slug="race")
    ShopSettings.objects.filter(pk=1).update(hold_share_percent=100)

    def checkout(i: int) -> Order:
        return order_create(
            req=CheckoutRequest(
                product="race", quantity=1, email=f"b{i}@example.com", client_ip=f"192.0.2.{i + 1}"
            )
        )

    results = run_concurrently(n, checkout)
    assert all(isinstance(r, Order) and r.holds_keys for r in results), results
    reserved = CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED)
    assert reserved.count() == n
    assert len(set(reserved.values_list("order_id", flat=True))) == n


def _holding_product_row(product) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """Another transaction that holds the product's row lock until released, as an UPDATE of
    the product (the owner editing it) or the line keeper does."""
    from django.db import transaction

    from shop.models import Product

    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Product.objects.select_for_update(no_key=True).filter(pk=product.pk))
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    return holding, release, thread


def test_checkout_and_delivery_never_wait_for_the_product_row():
    """A locked product row (an owner editing it, a restock keeping line order) delays neither
    a checkout nor a delivery of that product: both touch only their order's and keys' rows.
    With a lock timeout, any wait on the product row fails the test instead of hanging it."""
    product = stock_product(3, slug="race")
    _, release, thread = _holding_product_row(product)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        order = order_create(
            req=CheckoutRequest(product="race", quantity=2, email="hot@example.com")
        )
        pay(order)
    finally:
        release.set()
        thread.join(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order, status=CardKey.Status.SOLD).count() == 2


def test_lock_order_locks_the_order_row_only():
    from django.db import transaction

    from orders.locks import lock_order

    product = stock_product(1, slug="race")
    order = OrderFactory(product=product)
    _, release, thread = _holding_product_row(product)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            assert lock_order(order.pk).pk == order.pk
    finally:
        release.set()
        thread.join(10)


def test_payment_in_time_keeps_its_place_against_racing_checkouts():
    """A buyer paid inside the hold, but the payment reached us after the hold was expired
    and its keys put back on sale. Racing new checkouts for the same keys, the in-time payer
    still gets a key: free ones first, else one held by a checkout that came after it. Every
    key is sold once; whoever lost theirs waits as a backorder."""
    from orders.services import order_expire
    from orders.tasks import deliver_all_backorders

    product = stock_product(3, slug="race")
    first = OrderFactory(product=product, quantity=1)
    assert CardKey.objects.filter(order=first, status=CardKey.Status.RESERVED).count() == 1
    paid_at = timezone.now()
    Order.objects.filter(pk=first.pk).update(hold_expires_at=paid_at + timedelta(seconds=1))
    first.refresh_from_db()
    Order.objects.filter(pk=first.pk).update(hold_expires_at=paid_at - timedelta(seconds=1))
    assert order_expire(order_id=first.pk)  # the sweeper got there first: keys back on sale
    Order.objects.filter(pk=first.pk).update(hold_expires_at=paid_at + timedelta(seconds=1))

    def work(i: int):
        if i == 0:
            # Signed when the buyer paid (in time); it arrives 30 s later.
            event = completed_event(first)
            event["created"] = int(paid_at.timestamp()) - 30
            payload = encode(event)
            return payment_event_receive(
                payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            )
        return order_create(
            req=CheckoutRequest(
                product="race", quantity=1, email=f"late{i}@example.com", client_ip=f"192.0.2.{i}"
            )
        )

    results = run_concurrently(4, work)
    first.refresh_from_db()
    assert first.status == OrderStatus.DELIVERED, results
    later = [r for r in results[1:] if isinstance(r, Order)]
    run_concurrently(len(later), lambda i: pay(later[i]))
    deliver_all_backorders()
    statuses = Counter(Order.objects.filter(product=product).values_list("status", flat=True))
    assert statuses[OrderStatus.DELIVERED] == 3
    assert statuses[OrderStatus.DELIVERED] + statuses[OrderStatus.BACKORDERED] == 1 + len(later)
    assert_each_key_sold_once(product, 3)


def test_backorders_are_served_in_line_order_while_buyers_race_the_restock():
    """Paid backorders are first in line on restock, even with new checkouts racing for the
    new keys: a checkout only gets what the backorders do not need."""
    from cardpool.services import keys_import

    product = stock_product(0, slug="race")
    backorders = [OrderFactory(product=product, quantity=1) for _ in range(3)]
    for order in backorders:
        pay(order)
    assert set(Order.objects.filter(product=product).values_list("status", flat=True)) == {
        OrderStatus.BACKORDERED
    }

    def work(i: int):
        if i == 0:
            return keys_import(product=product, text="\n".join(f"NEW-{k}" for k in range(4)))
        return order_create(
            req=CheckoutRequest(
                product="race", quantity=1, email=f"new{i}@example.com", client_ip=f"192.0.2.{i}"
            )
        )

    results = run_concurrently(6, work)
    from orders.tasks import deliver_all_backorders

    deliver_all_backorders()
    for order in backorders:
        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED, results
    # 4 new keys, 3 owed to the backorders: at most one newcomer holds one. (Others may have
    # orders without a hold for it: whoever of them pays first gets it, if the holder fails.)
    newcomers = [r for r in results[1:] if isinstance(r, Order) and r.holds_keys]
    assert len(newcomers) <= 1
    sold_or_held = CardKey.objects.filter(
        product=product, status__in=[CardKey.Status.SOLD, CardKey.Status.RESERVED]
    )
    assert sold_or_held.count() == 3 + len(newcomers)
