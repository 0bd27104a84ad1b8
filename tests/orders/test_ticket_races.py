"""Two replaces of one key at once (real threads on PostgreSQL): exactly one replaces it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cardpool.crypto import encrypt_secret, fingerprint
from cardpool.models import CardKey
from cardpool.selectors import keys_for_order
from orders.events import OrderEventKind
from orders.models import KeyReplacement, MessagePurpose, OrderEvent, OrderStatus, OutboxMessage
from orders.support.actions import order_key_replace
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_two_racing_replaces_of_one_key_replace_it_once():
    product = ProductFactory()
    now = timezone.now()
    order = OrderFactory(
        product=product, status=OrderStatus.DELIVERED, paid_at=now, delivered_at=now
    )
    old = CardKey.objects.create(
        product=product,
        secret=encrypt_secret("RACE-OLD"),
        fingerprint=fingerprint("RACE-OLD"),
        status=CardKey.Status.SOLD,
        order=order,
        slot=1,
        sold_at=now,
    )
    for i in range(3):
        CardKey.objects.create(
            product=product,
            secret=encrypt_secret(f"RACE-NEW-{i}"),
            fingerprint=fingerprint(f"RACE-NEW-{i}"),
        )

    results = run_concurrently(
        2, lambda i: order_key_replace(order_id=order.pk, key_id=old.pk, actor=None)
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.done for r in results) == [False, True]
    assert KeyReplacement.objects.count() == 1
    assert len(keys_for_order(order)) == 1 and keys_for_order(order) != ["RACE-OLD"]
    assert CardKey.objects.filter(status=CardKey.Status.AVAILABLE).count() == 2
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.KEY_REPLACED).count() == 1
    assert (
        OutboxMessage.objects.filter(order=order, purpose=MessagePurpose.KEY_REPLACED).count() == 1
    )
