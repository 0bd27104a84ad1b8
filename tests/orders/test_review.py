"""The owner's review of held orders (orders/review.py), raced with real threads on PostgreSQL.

Approve and reject-and-refund racing on one held order: exactly one wins. Either the buyer
has the keys and no refund was asked, or the refund was asked and no key was sold.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from cardpool.models import CardKey
from orders.models import Order, OrderEvent, OrderStatus
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import encode, sign_payload
from orders.review import order_review_approve, order_review_reject_refund
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROUNDS = 6


def _held_order(product) -> Order:
    order = OrderFactory(product=product, quantity=1)
    payload = encode(completed_event(order, amount_total=order.amount - 1))
    payment_event_receive(  # paid less than the price: on hold for the owner
        payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    return order


def test_approve_and_reject_racing_on_one_held_order_exactly_one_wins():
    from django.db import transaction

    product = stock_product(ROUNDS, slug="review")
    wins = {"approve": 0, "reject": 0}
    for _ in range(ROUNDS):
        order = _held_order(product)

        def decide(i: int, order_id: int = order.pk):
            if i == 0:
                with transaction.atomic():
                    return order_review_approve(order_id=order_id, actor=None)
            return order_review_reject_refund(order_id=order_id, actor=None)

        approve, reject = run_concurrently(2, decide)
        assert not isinstance(approve, Exception) and not isinstance(reject, Exception)
        assert approve.acted != reject.acted, (approve, reject)  # exactly one acted
        order.refresh_from_db()
        sold = CardKey.objects.filter(order=order, status=CardKey.Status.SOLD).count()
        refund_asked = OrderEvent.objects.filter(order=order, kind="refund_asked").exists()
        if approve.acted:
            wins["approve"] += 1
            assert order.status == OrderStatus.DELIVERED and sold == 1 and not refund_asked
        else:
            wins["reject"] += 1
            assert order.status in (OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED)
            assert sold == 0 and refund_asked
    assert sum(wins.values()) == ROUNDS


def test_a_refused_refund_sends_the_order_back_to_review(monkeypatch):
    import stripe

    product = stock_product(1, slug="review")
    order = _held_order(product)
    Order.objects.filter(pk=order.pk).update(payment_provider="stripe")

    def refuse(**kwargs):
        raise stripe.APIConnectionError("no route to Stripe")

    monkeypatch.setattr(stripe.Refund, "create", refuse)
    outcome = order_review_reject_refund(order_id=order.pk, actor=None)
    assert not outcome.acted and outcome.result.startswith("refund failed")
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    assert order.events.filter(kind="refund_failed").exists()
    from django.db import transaction

    with transaction.atomic():  # the owner may still approve it
        assert order_review_approve(order_id=order.pk, actor=None).acted
