"""Catalog reads, above all *stock*: computed from the key pool and open claims, never stored.

stock = available keys − quantity claimed by unpaid orders whose hold is still running
        − quantity of paid orders waiting as backorders (they are first in line on restock).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from cardpool.models import CardKey
from orders.models import Order, OrderStatus
from shop.models import Product


def claims_filter(now: datetime) -> Q:
    return Q(status=OrderStatus.PENDING, hold_expires_at__gt=now) | Q(
        status=OrderStatus.BACKORDERED
    )


def available_key_count(product_id: int) -> int:
    return CardKey.objects.filter(product_id=product_id, status=CardKey.Status.AVAILABLE).count()


def claimed_quantity(product_id: int, *, now: datetime) -> int:
    qs = Order.objects.filter(claims_filter(now), product_id=product_id)
    return qs.aggregate(total=Sum("quantity"))["total"] or 0


def product_stock(product_id: int, *, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return max(0, available_key_count(product_id) - claimed_quantity(product_id, now=now))


def with_stock(queryset: QuerySet[Product], *, now: datetime | None = None) -> QuerySet[Product]:
    """Annotate ``available_keys``, ``claimed`` and ``stock`` in one query."""
    now = now or timezone.now()
    available = (
        CardKey.objects.filter(product=OuterRef("pk"), status=CardKey.Status.AVAILABLE)
        .values("product")
        .annotate(n=Count("pk"))
        .values("n")
    )
    claimed = (
        Order.objects.filter(claims_filter(now), product=OuterRef("pk"))
        .values("product")
        .annotate(q=Sum("quantity"))
        .values("q")
    )
    zero = Value(0, output_field=IntegerField())
    return queryset.annotate(
        available_keys=Coalesce(Subquery(available, output_field=IntegerField()), zero),
        claimed=Coalesce(Subquery(claimed, output_field=IntegerField()), zero),
    ).annotate(stock=Greatest(zero, Coalesce("available_keys", zero) - Coalesce("claimed", zero)))


def products_on_sale() -> QuerySet[Product]:
    return with_stock(Product.objects.filter(on_sale=True).select_related("category")).order_by(
        "category__sort_order", "sort_order", "name"
    )


def product_on_sale(slug: str) -> Product | None:
    return products_on_sale().filter(slug=slug).first()
