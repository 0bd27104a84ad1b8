"""Stock: what a new buyer can have, derived from the key rows and open backorders, never stored.

Orders owns every claim on stock (holds and backorders are order state), so this is the one
definition; the storefront, the API, the product admin, risk alerts and delivery read it here.

    sellable = unsold keys (available, or reserved by a hold, running or lapsed)
               − quantity of paid orders waiting as backorders (first in line on restock)
    stock    = sellable − keys held by running holds, but at most the hold share of sellable

Holds count against the stock shown only up to the owner's hold share
(``ShopSettings.hold_share_percent``, ``orders.holds``). Checkout never lets holds grow past
that share on their own; they can end up above it when the product's other keys sell, or
through the small floor that lets the last keys be held. Either way those keys are merely
held by buyers who may not pay, checkout still takes orders for them (whoever pays first wins
a key that is free by then), and the product must not read "Sold out" to everyone else: so
what is held beyond the share stays in the figure. Below the share (the usual case) the
figure is exactly the keys nobody holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from cardpool.models import CardKey
from orders.models import Order, OrderStatus
from shop.models import Product, ShopSettings


def backorder_demand(product_id: int, *, before: datetime | None = None, exclude_id=None) -> int:
    """Keys owed to paid backorders of the product (those queued before ``before``, if given)."""
    qs = Order.objects.filter(product_id=product_id, status=OrderStatus.BACKORDERED)
    if before is not None:
        qs = qs.filter(queued_at__lt=before)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.aggregate(total=Sum("quantity"))["total"] or 0


def shown_stock(*, unsold: int, held: int, owed: int, share_percent: int) -> int:
    """The stock figure from its parts (see the module docstring); ``with_stock`` is the same
    arithmetic in SQL."""
    sellable = max(0, unsold - owed)
    return max(0, sellable - min(held, sellable * share_percent // 100))


def product_stock(product_id: int, *, now: datetime | None = None) -> int:
    row = with_stock(Product.objects.filter(pk=product_id), now=now).values(  # type: ignore[misc]
        "stock"
    )[0]  # the stubs cannot see fields annotated by with_stock
    return int(row["stock"])


def _key_count(**conditions: Any) -> Coalesce:
    """The product's keys matching ``conditions``, as a correlated ``COUNT(*)``. Each caller's
    conditions name one status, so a partial index of ``CardKey`` (``cardkey_available_idx``,
    ``cardkey_reserved_idx``) answers it from the index alone: a product's sold keys, millions
    of them on a busy shop, are never read."""
    keys = CardKey.objects.filter(product=OuterRef("pk"), **conditions)
    return Coalesce(
        Subquery(keys.values("product").annotate(n=Count("*")).values("n")[:1]),
        Value(0, output_field=IntegerField()),
    )


def with_stock(
    queryset: QuerySet[Product], *, now: datetime | None = None, share_percent: int | None = None
) -> QuerySet[Product]:
    """Annotate, in one query: ``available_keys`` (unsold keys: available or reserved),
    ``held`` (keys reserved by running holds), ``claimed`` (those plus backorders) and
    ``stock`` (what the storefront and the API show: see the module docstring).

    Unsold keys are counted as available plus reserved, one status at a time: a single count
    over ``status IN (available, reserved)`` matches neither partial index and reads every key
    the product ever had."""
    now = now or timezone.now()
    if share_percent is None:
        share_percent = ShopSettings.load().hold_share_percent
    backordered = (
        Order.objects.filter(status=OrderStatus.BACKORDERED, product=OuterRef("pk"))
        .values("product")
        .annotate(q=Sum("quantity"))
        .values("q")[:1]
    )
    zero = Value(0, output_field=IntegerField())
    sellable = Greatest(zero, F("available_keys") - F("backordered"))
    held_counted = Least(F("held"), sellable * Value(share_percent) / Value(100))
    return (
        queryset.annotate(
            available_keys=_key_count(status=CardKey.Status.AVAILABLE)
            + _key_count(status=CardKey.Status.RESERVED),
            held=_key_count(status=CardKey.Status.RESERVED, reserved_until__gt=now),
            backordered=Coalesce(Subquery(backordered, output_field=IntegerField()), zero),
        )
        .annotate(claimed=F("held") + F("backordered"))
        .annotate(stock=Greatest(zero, sellable - held_counted))
    )


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
