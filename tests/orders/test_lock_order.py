"""The global lock order (``orders/services.py``), checked by recording the locks real flows take.

Every helper that takes a row or advisory lock is wrapped; checkout, payment, a late payment
that tops up, backorders on restock, a refund, a review and a withdrawal then run for real,
and within each transaction the locks that can *wait* must come in rank order. Picks with
``SKIP LOCKED`` never wait, so they may come anywhere; so may putting back this order's own
key rows after a top-up fell short (nobody else can hold them while the line keeper is held),
or a checkout's own reservation that fell short (its rows were locked by it a moment ago).
"""

from __future__ import annotations

import functools
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cardpool.services import keys_import
from core.errors import OutOfStock
from orders.models import Order, OrderStatus
from orders.services import CheckoutRequest, order_create
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event, refund_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

RANK = {
    "lock_buyer": 0,
    "lock_hold_stripe": 1,
    "lock_hold_stripes_all": 1,
    "lock_payment_event": 2,
    "lock_order": 3,
    "lock_order_by_no": 3,
    "lock_order_by_payment_intent": 3,
    "keys_sell_reserved": 4,
    "keys_release": 4,
    "lock_product": 5,
    "lock_attribution": 6,
    "lock_promoters": 6,
    "lock_withdrawals": 6,
}
NEVER_WAIT = {"keys_reserve", "keys_take_free"}

# Where each lock helper is called from (they are imported by name).
SITES = {
    "orders.services": ["lock_buyer", "lock_order"],
    # Not keys_release here: a checkout puts back only the rows it reserved a moment ago.
    "orders.holds": ["lock_hold_stripe", "lock_hold_stripes_all", "lock_product", "keys_reserve"],
    "orders.review": ["lock_order"],
    "orders.payments.refunds": ["lock_order"],
    "orders.payments.processing": [
        "lock_order_by_no",
        "lock_order_by_payment_intent",
        "lock_payment_event",
    ],
    "orders.delivery": [
        "lock_order",
        "lock_product",
        "keys_release",
        "keys_sell_reserved",
        "keys_take_free",
    ],
    "orders.transitions": ["keys_release"],
    "commissions.services": ["lock_attribution", "lock_promoters", "lock_withdrawals"],
}


def _transaction_id() -> str:
    """PostgreSQL's id of the transaction running now. Not ``id()`` of Django's outermost
    ``Atomic``: CPython gives a freed object's address to the next one, so the payment's and
    then the refund's transaction could share an id, and the refund's first lock would read
    as taken after the payment's last."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text")
        return cursor.fetchone()[0]


@pytest.fixture
def taken(monkeypatch):
    """The locks taken, as ``(transaction, name, kwargs)`` in the order they were taken."""
    import importlib

    record: list[tuple[str, str, dict]] = []

    def wrap(name, fn):
        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            record.append((_transaction_id(), name, kwargs))
            return fn(*args, **kwargs)

        return recorded

    for module_name, names in SITES.items():
        module = importlib.import_module(module_name)
        for name in names:
            monkeypatch.setattr(module, name, wrap(name, getattr(module, name)))
    return record


def _assert_in_order(record) -> None:
    assert record, "no lock was recorded: the wrappers missed the code paths"
    highest: dict[str, tuple[int, str]] = {}
    for tx, name, kwargs in record:
        if name in NEVER_WAIT:
            continue
        if name == "keys_release" and kwargs.get("undelivered"):
            continue  # this order's own rows after a short top-up (see the module docstring)
        rank = RANK[name]
        before = highest.get(tx)
        assert before is None or rank >= before[0], (
            f"{name} (rank {rank}) taken after {before[1]} (rank {before[0]}) "
            f"in one transaction: {[n for t, n, _ in record if t == tx]}"
        )
        if before is None or rank > before[0]:
            highest[tx] = (rank, name)


@pytest.fixture
def promoter():
    from django.contrib.auth.models import User

    from commissions.models import Promoter

    up = Promoter.objects.create(
        user=User.objects.create(username="up"), code="UP", status="active"
    )
    return Promoter.objects.create(
        user=User.objects.create(username="pr"), code="PR", status="active", upline=up
    )


def _pay(client, order, **kwargs):
    return post_event(client, completed_event(order, **kwargs))


def test_checkout_payment_refund_take_their_locks_in_the_global_order(client, taken, promoter):
    stock_product(3, slug="lo")
    order = order_create(
        req=CheckoutRequest(
            product="lo", quantity=1, email="lo@example.com", client_ip="192.0.2.9", ref="PR"
        )
    )
    assert _pay(client, order).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    event = refund_event(order.payment_intent, amount=order.amount, amount_refunded=order.amount)
    assert post_event(client, event).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    names = {name for _, name, _ in taken}
    assert {"lock_buyer", "keys_reserve", "lock_payment_event", "lock_order_by_no"} <= names
    assert {"lock_hold_stripes_all"} <= names  # 3 keys: every checkout is near the cap
    assert {"keys_sell_reserved", "lock_attribution", "lock_order_by_payment_intent"} <= names
    _assert_in_order(taken)


def test_a_checkout_far_below_the_hold_cap_takes_one_stripe_in_order(client, taken):
    stock_product(1000, slug="wide")
    order = order_create(
        req=CheckoutRequest(
            product="wide", quantity=1, email="w@example.com", client_ip="192.0.2.7"
        )
    )
    assert order.holds_keys
    assert _pay(client, order).status_code == 200
    names = [name for _, name, _ in taken]
    assert "lock_hold_stripe" in names and "lock_hold_stripes_all" not in names
    assert "lock_product" not in names  # no backorders: the product row is never locked
    _assert_in_order(taken)


def test_late_payment_backorder_restock_and_review_keep_the_order(client, taken):
    from orders.review import order_review_approve

    product = stock_product(1, slug="lo")
    lapsed = timezone.now() - timedelta(minutes=1)
    late = OrderFactory(product=product, hold_expires_at=lapsed, reserve=False)
    waiting = OrderFactory(product=product, hold_expires_at=lapsed, reserve=False)
    assert _pay(client, late).status_code == 200  # tops up from free keys
    assert _pay(client, waiting).status_code == 200  # none left: backordered
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.BACKORDERED
    with pytest.raises(OutOfStock):  # the backorder is owed the next key: line keeper taken
        order_create(req=CheckoutRequest(product="lo", quantity=1, email="b@example.com"))
    keys_import(product=product, text="NEW-1\nNEW-2")  # restock serves the backorder
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.DELIVERED

    held = OrderFactory(product=product)
    assert _pay(client, held, amount_total=1).status_code == 200
    from django.db import transaction

    with transaction.atomic():
        assert order_review_approve(order_id=held.pk, actor=None).acted
    names = {name for _, name, _ in taken}
    assert {"lock_product", "keys_take_free", "lock_order"} <= names
    _assert_in_order(taken)
