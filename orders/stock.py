"""Stock: what a new buyer can have, derived from the key rows and open backorders, never stored.

Orders owns every claim on stock (holds and backorders are order state), so this is the one
definition; the storefront, the product admin, risk alerts and delivery all read it here.

stock = free keys (available, or reserved by a hold that ran out)
        − quantity of paid orders waiting as backorders (they are first in line on restock).

Unpaid orders inside their hold are not subtracted: their keys are already *reserved* rows
(``cardpool.reservation``), so they are simply not free.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from cardpool.models import CardKey
from cardpool.selectors import free_key_count
from orders.models import Order, OrderStatus
from shop.models import Product


def backorder_demand(product_id: int, *, before: datetime | None = None, exclude_id=None) -> int:
    """Keys owed to paid backorders of the product (those queued before ``before``, if given)."""
    qs = Order.objects.filter(product_id=product_id, status=OrderStatus.BACKORDERED)
    if before is not None:
        qs = qs.filter(queued_at__lt=before)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.aggregate(total=Sum("quantity"))["total"] or 0


def product_stock(product_id: int, *, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return max(0, free_key_count(product_id, now=now) - backorder_demand(product_id))


def with_stock(queryset: QuerySet[Product], *, now: datetime | None = None) -> QuerySet[Product]:
    """Annotate, in one query: ``available_keys`` (unsold keys: available or reserved),
    ``claimed`` (running holds' reserved keys plus backorders) and ``stock`` (the difference:
    what a new buyer can have)."""
    now = now or timezone.now()
    unsold = (
        CardKey.objects.filter(
            product=OuterRef("pk"),
            status__in=[CardKey.Status.AVAILABLE, CardKey.Status.RESERVED],
        )
        .values("product")
        .annotate(n=Count("pk"))
        .values("n")
    )
    held = (
        CardKey.objects.filter(
            product=OuterRef("pk"), status=CardKey.Status.RESERVED, reserved_until__gt=now
        )
        .values("product")
        .annotate(n=Count("pk"))
        .values("n")
    )
    backordered = (
        Order.objects.filter(status=OrderStatus.BACKORDERED, product=OuterRef("pk"))
        .values("product")
        .annotate(q=Sum("quantity"))
        .values("q")
    )
    zero = Value(0, output_field=IntegerField())
    return queryset.annotate(
        available_keys=Coalesce(Subquery(unsold, output_field=IntegerField()), zero),
        claimed=Coalesce(Subquery(held, output_field=IntegerField()), zero)
        + Coalesce(Subquery(backordered, output_field=IntegerField()), zero),
    ).annotate(stock=Greatest(zero, F("available_keys") - F("claimed")))


def stock_figures(product_id: int) -> dict[str, int]:
    """``available_keys``, ``claimed`` and ``stock`` of one product (the key import page)."""
    row = with_stock(Product.objects.filter(pk=product_id)).values(  # type: ignore[misc]
        "available_keys", "claimed", "stock"
    )[0]  # the stubs cannot see fields annotated by with_stock
    return {
        "available_keys": row["available_keys"],
        "claimed": row["claimed"],
        "stock": row["stock"],
    }
