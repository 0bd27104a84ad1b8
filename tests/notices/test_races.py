"""Buyers paying while several workers batch at once, with real threads on PostgreSQL: every
order reaches the owner exactly once, in one message per batch."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from orders.models import NoticeBatch, NoticeItem, Order, OrderStatus, PendingNotice
from orders.notices.batching import notices_batch
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, stock_product
from tests.notices.conftest import notifier, owner_messages, windows_close
from tests.orders.test_races import pay as webhook_pay

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BUYERS = 24
BATCHERS = 3


def test_racing_payments_and_batchers_notify_each_order_once():
    from orders.models import PaymentEvent
    from orders.payments.processing import payment_event_process

    first = notifier("email", "owner@example.com", batch_seconds=0)
    second = notifier("email", "ops@example.com", batch_seconds=3600, events=["new_order"])
    product = stock_product(BUYERS, slug="p")
    orders = [OrderFactory(product=product) for _ in range(BUYERS)]
    for order in orders:
        webhook_pay(order)  # stored; processed by the racing threads below
    events = list(PaymentEvent.objects.order_by("id").values_list("pk", flat=True))
    done = threading.Event()

    def work(i: int) -> object:
        if i < BATCHERS:  # workers batching in a loop until the buyers are done
            passes = 0
            while not done.is_set():
                notices_batch()
                passes += 1
            return passes
        for event_id in events[i - BATCHERS :: BUYERS // 4]:
            payment_event_process(event_id=event_id)
        return None

    def buyers_then_stop(i: int) -> object:
        try:
            return work(i)
        finally:
            if i >= BATCHERS:
                finished.append(i)
                if len(finished) == BUYERS // 4:
                    done.set()

    finished: list[int] = []
    results = run_concurrently(BATCHERS + BUYERS // 4, buyers_then_stop)
    assert not [r for r in results if isinstance(r, Exception)], results
    notices_batch()
    windows_close()
    notices_batch()

    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == BUYERS
    assert not PendingNotice.objects.exists()
    for destination in (first, second):
        noticed = Counter(
            NoticeItem.objects.filter(notifier=destination).values_list("order_id", flat=True)
        )
        assert set(noticed) == {o.pk for o in orders} and set(noticed.values()) == {1}
        batches = NoticeBatch.objects.filter(notifier=destination)
        assert not batches.filter(status=NoticeBatch.Status.OPEN).exists()
        keys = [b.message_key for b in batches]
        assert len(keys) == len(set(keys)) == owner_messages(recipient=destination.target).count()
    assert NoticeBatch.objects.filter(notifier=second).count() == 1  # a window of an hour
    connection.close()
