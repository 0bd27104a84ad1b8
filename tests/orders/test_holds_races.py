"""The hold share under racing checkouts: real threads, each on its own PostgreSQL connection.

Counting the holds and then reserving is a race: two checkouts both see room for one more and
both take it. ``orders.holds`` keeps the cap exact with advisory stripes: far below the cap a
checkout takes one stripe (up to ``HOLD_STRIPES`` run side by side), near it all of them.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, transaction

from cardpool.models import CardKey
from orders import holds
from orders.locks import _hold_stripe_keys
from orders.models import Order
from orders.services import CheckoutRequest, order_create
from tests.concurrency import run_concurrently
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _buy(slug: str, n: int, quantity: int = 1) -> Order:
    """Checkout ``n``, from an address (and network) and email of its own."""
    return order_create(
        req=CheckoutRequest(
            product=slug,
            quantity=quantity,
            email=f"racer{n}@example.com",
            client_ip=f"10.{n // 250}.{n % 250}.1",
        )
    )


@pytest.fixture
def paths(monkeypatch):
    """The stripe locks each checkout took: one (the parallel path), then all of them when
    that one's count said the cap is near (the exact path)."""
    taken: list[str] = []
    for name in ("lock_hold_stripe", "lock_hold_stripes_all"):
        real = getattr(holds, name)

        def recorded(product_id, _real=real, _name=name):
            taken.append(_name)
            return _real(product_id)

        monkeypatch.setattr(holds, name, recorded)
    return taken


def test_the_share_holds_exactly_when_many_racers_cross_it(paths):
    """600 keys, share 50 %: 300 may be held. 12 threads × 30 checkouts of 2 keys ask for 720.
    The first ones run side by side (one stripe each), the last ones near the cap one at a
    time (all stripes); every checkout is an order, and exactly 300 keys end up held."""
    product = stock_product(600, slug="crowd", max_per_order=2)
    threads, per_thread = 12, 30

    def racer(t: int) -> list[object]:
        out: list[object] = []
        for j in range(per_thread):
            try:
                out.append(_buy("crowd", t * per_thread + j, quantity=2))
            except Exception as exc:  # collected and asserted on below
                out.append(exc)
        return out

    results = [r for batch in run_concurrently(threads, racer) for r in batch]  # type: ignore[union-attr]
    assert all(isinstance(r, Order) for r in results), [
        r for r in results if not isinstance(r, Order)
    ]
    held = CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED)
    assert held.count() == 300
    holders = Order.objects.filter(product=product, holds_keys=True)
    assert holders.count() == 150
    assert Counter(held.values_list("order_id", flat=True)) == {o.pk: 2 for o in holders}
    assert not Order.objects.filter(product=product, holds_keys=False, keys__isnull=False).exists()
    counts = Counter(paths)  # every checkout tries one stripe; near the cap it takes all
    assert counts["lock_hold_stripe"] == len(results), counts
    assert 0 < counts["lock_hold_stripes_all"] < len(results), counts


def test_a_small_product_gives_exactly_its_share_to_racing_buyers(paths):
    product = stock_product(10, slug="small")
    results = run_concurrently(20, lambda i: _buy("small", i))
    assert all(isinstance(r, Order) for r in results), results
    assert CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED).count() == 5
    assert sum(r.holds_keys for r in results) == 5  # type: ignore[union-attr]
    assert Counter(paths)["lock_hold_stripes_all"] == 20  # near the cap from the start: exact


def test_without_the_stripes_the_racers_overshoot_the_cap(monkeypatch):
    """The stripes are what keeps the cap: with them switched off, racing checkouts that each
    counted room for one more hold all take it."""
    monkeypatch.setattr(holds, "lock_hold_stripe", lambda product_id: None)
    monkeypatch.setattr(holds, "lock_hold_stripes_all", lambda product_id: None)
    real_reserve = holds.keys_reserve
    counted = threading.Barrier(8)

    def reserve_after_everyone_counted(**kwargs):
        counted.wait(10)  # every racer has counted before any reserves
        return real_reserve(**kwargs)

    monkeypatch.setattr(holds, "keys_reserve", reserve_after_everyone_counted)
    product = stock_product(10, slug="unguarded")
    run_concurrently(8, lambda i: _buy("unguarded", i))
    assert CardKey.objects.filter(product=product, status=CardKey.Status.RESERVED).count() > 5


def test_checkouts_far_below_the_cap_do_not_wait_for_each_other():
    """A checkout in flight holds one stripe; another checkout of the same product takes a
    different one and completes meanwhile (a lock timeout fails the test instead of hanging)."""
    product_id = stock_product(1000, slug="wide").pk
    holding, release = threading.Event(), threading.Event()

    def in_flight() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for key in _hold_stripe_keys(product_id)[1:]:  # all stripes but one busy
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=in_flight)
    thread.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        order = _buy("wide", 1)
    finally:
        release.set()
        thread.join(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert order.holds_keys
