"""The reports count stock their own, index-friendly way; it must be ``orders.stock``'s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.selectors import stock_levels
from cardpool.models import CardKey
from orders.models import OrderStatus
from orders.stock import with_stock
from shop.models import Product
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_stock_levels_equal_orders_stock_on_a_mixed_pool():
    now = timezone.now()
    plenty = stock_product(12, slug="plenty")
    OrderFactory(product=plenty, quantity=3)  # a running hold: 3 reserved keys
    lapsed = OrderFactory(product=plenty, quantity=2)
    CardKey.objects.filter(order=lapsed).update(reserved_until=now - timedelta(minutes=1))
    owed = stock_product(1, slug="owed")
    OrderFactory(product=owed, quantity=4, status=OrderStatus.BACKORDERED, reserve=False)
    stock_product(0, slug="none")
    voided = stock_product(5, slug="voided")
    CardKey.objects.filter(product=voided).update(status=CardKey.Status.VOID)
    ours = {r["pk"]: r["stock"] for r in stock_levels(Product.objects.all(), now=now)}
    theirs = dict(with_stock(Product.objects.all(), now=now).values_list("pk", "stock"))
    assert ours == theirs
    assert ours[plenty.pk] == 12 - 3 and ours[owed.pk] == 0
