"""Risk limits and backorders under real concurrency: threads, each with its own PostgreSQL
connection, really committing (``run_concurrently`` releases them together)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from cardpool.models import CardKey
from cardpool.services import keys_import
from core.errors import KamiError
from orders.delivery import backorders_deliver
from orders.models import Delivery, Order, OrderStatus
from riskrules.models import RiskDecision, RuleAction
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, stock_product
from tests.riskrules.conftest import checkout, only_rules, pay, rule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_twenty_simultaneous_orders_from_one_ip_let_exactly_three_through(roomy_unpaid_limits):
    """The seeded default (same IP + product, more than 3 in 10 minutes → block)."""
    stock_product(50, slug="p")
    results = run_concurrently(20, lambda i: checkout(email=f"bot{i}@example.com"))
    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, KamiError)]
    assert len(orders) == 3, results
    assert len(refused) == 17 and {e.code for e in refused} == {"blocked"}
    assert Order.objects.count() == 3
    blocks = RiskDecision.objects.filter(outcome=RuleAction.BLOCK)
    assert blocks.count() == 17  # every refusal is on record, despite its rollback
    assert set(blocks.values_list("inputs__seen", flat=True)) == {3}


def test_email_velocity_is_atomic_across_networks(roomy_unpaid_limits):
    stock_product(50, slug="p")
    by_email = rule("Same email")
    by_email.limit, by_email.action = 3, RuleAction.BLOCK
    by_email.save()
    only_rules(by_email)
    results = run_concurrently(
        12, lambda i: checkout(email="same@example.com", ip=f"198.51.100.{i + 1}")
    )
    assert sum(isinstance(r, Order) for r in results) == 3, results


def lapsed(product, **kwargs) -> Order:
    """An order whose hold lapsed unpaid: when it pays, it queues from its payment."""
    return OrderFactory(
        product=product,
        status=OrderStatus.EXPIRED,
        hold_expires_at=timezone.now() - timedelta(seconds=1),
        **kwargs,
    )


def backordered(product, n: int) -> list[Order]:
    """``n`` paid orders waiting for keys, paid one after another (oldest first)."""
    orders = []
    for _ in range(n):
        order = lapsed(product)
        pay(order)
        order.refresh_from_db()
        assert order.status == OrderStatus.BACKORDERED
        orders.append(order)
    return orders


@pytest.mark.parametrize("imported", [8, 3])
def test_import_racing_new_payments_never_over_delivers_and_serves_oldest_first(imported):
    product = stock_product(0, slug="bo")
    waiting = backordered(product, 5)
    newcomers = [lapsed(product) for _ in range(10)]
    keys = "\n".join(f"RESTOCK-{i}" for i in range(imported))

    def work(i: int):
        if i == 0:
            return keys_import(product=product, text=keys)
        return pay(newcomers[i - 1])

    results = run_concurrently(11, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    backorders_deliver(product_id=product.pk)  # the periodic safety net, as in production

    statuses = {o.pk: s for o, s in ((o, Order.objects.get(pk=o.pk).status) for o in waiting)}
    delivered_waiting = [o.pk for o in waiting if statuses[o.pk] == OrderStatus.DELIVERED]
    # Oldest first: the delivered earlier backorders are exactly a prefix of the queue.
    assert delivered_waiting == [o.pk for o in waiting[: min(imported, 5)]]

    all_statuses = Counter(Order.objects.filter(product=product).values_list("status", flat=True))
    assert all_statuses[OrderStatus.DELIVERED] == imported  # every key sold, none twice
    assert all_statuses[OrderStatus.BACKORDERED] == 15 - imported
    sold = CardKey.objects.filter(product=product, status=CardKey.Status.SOLD)
    assert sold.count() == imported
    per_order = Counter(sold.values_list("order_id", flat=True))
    assert set(per_order.values()) == {1}  # nobody got more keys than they paid for
    assert Delivery.objects.filter(order__product=product).count() == imported
    if imported <= 5:
        assert not Order.objects.filter(
            pk__in=[o.pk for o in newcomers], status=OrderStatus.DELIVERED
        ).exists()


def test_backorders_paid_inside_their_hold_are_served_in_claim_order_on_restock():
    product = stock_product(0, slug="bo")
    # Created oldest first, but paid newest first, all inside their holds.
    orders = [OrderFactory(product=product, status=OrderStatus.EXPIRED) for _ in range(3)]
    for order in reversed(orders):
        pay(order)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.BACKORDERED}
    keys_import(product=product, text="ONE-KEY")
    orders[0].refresh_from_db()
    assert orders[0].status == OrderStatus.DELIVERED  # first in line (created first)
