"""``orders.stock.with_stock`` counts unsold keys one status at a time (so the partial indexes
answer it); its figures must be the plain definition's, counted here in bare SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cardpool.models import CardKey
from orders.models import OrderStatus
from orders.stock import with_stock
from shop.models import Product
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# The definition (``orders.stock``'s docstring) over the raw tables, with none of its code.
BARE_SQL = """
    WITH counts AS (
        SELECT p.id,
               (SELECT count(*) FROM cardpool_cardkey k
                 WHERE k.product_id = p.id AND k.status IN ('available', 'reserved')) AS unsold,
               (SELECT count(*) FROM cardpool_cardkey k
                 WHERE k.product_id = p.id AND k.status = 'reserved'
                   AND k.reserved_until > %(now)s) AS held,
               (SELECT coalesce(sum(o.quantity), 0) FROM orders_order o
                 WHERE o.product_id = p.id AND o.status = 'backordered') AS owed
          FROM shop_product p
    ), sellable AS (
        SELECT id, unsold, held, owed, greatest(0, unsold - owed) AS sellable FROM counts
    )
    SELECT id, unsold, held, held + owed,
           greatest(0, sellable - least(held, sellable * %(share)s / 100))
      FROM sellable
"""


def _give(product: Product, n: int, status: str, *, until=None) -> None:
    """Turn ``n`` of the product's available keys into ``status``, owned by one new order."""
    order = OrderFactory(
        product=product,
        quantity=n,
        status=OrderStatus.PENDING if status == CardKey.Status.RESERVED else OrderStatus.DELIVERED,
        hold_expires_at=until or timezone.now(),
        reserve=False,
    )
    free = CardKey.objects.filter(product=product, status=CardKey.Status.AVAILABLE)
    for slot, key in enumerate(free.order_by("pk")[:n], start=1):
        reserved = status == CardKey.Status.RESERVED
        CardKey.objects.filter(pk=key.pk).update(
            status=status,
            order=order,
            slot=slot,
            reserved_until=until if reserved else None,
            sold_at=None if reserved else timezone.now(),
        )


@pytest.mark.parametrize("share", [0, 33, 50, 100])
def test_with_stock_is_the_bare_sql_count_on_a_mixed_pool(share):
    now = timezone.now()
    running, lapsed = now + timedelta(minutes=10), now - timedelta(minutes=1)
    mixed = stock_product(30, slug="mixed")
    _give(mixed, 12, CardKey.Status.SOLD)
    _give(mixed, 3, CardKey.Status.RESERVED, until=running)
    _give(mixed, 2, CardKey.Status.RESERVED, until=lapsed)
    CardKey.objects.filter(pk__in=mixed.keys.filter(status="available").values("pk")[:4]).update(
        status=CardKey.Status.VOID
    )
    OrderFactory(product=mixed, quantity=2, status=OrderStatus.BACKORDERED, reserve=False)
    overheld = stock_product(5, slug="overheld")  # holds beyond any share below 100 %
    _give(overheld, 4, CardKey.Status.RESERVED, until=running)
    owed = stock_product(3, slug="owed")  # more owed than unsold
    _give(owed, 1, CardKey.Status.SOLD)
    OrderFactory(product=owed, quantity=4, status=OrderStatus.BACKORDERED, reserve=False)
    gone = stock_product(6, slug="gone")  # nothing unsold: every key sold or void
    _give(gone, 4, CardKey.Status.SOLD)
    CardKey.objects.filter(product=gone, status=CardKey.Status.AVAILABLE).update(
        status=CardKey.Status.VOID
    )
    stock_product(0, slug="empty")

    with connection.cursor() as cursor:
        cursor.execute(BARE_SQL, {"now": now, "share": share})
        expected = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
    got = {
        row[0]: tuple(row[1:])
        for row in with_stock(Product.objects.all(), now=now, share_percent=share).values_list(
            "pk", "available_keys", "held", "claimed", "stock"
        )
    }
    assert got == expected
    # The pool holds every status, so the test cannot pass on a count that drops one.
    statuses = set(CardKey.objects.values_list("status", flat=True))
    assert statuses == {"available", "reserved", "sold", "void"}
    assert expected[mixed.pk][:3] == (30 - 12 - 4, 3, 3 + 2)
