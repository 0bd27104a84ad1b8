"""Holds that cannot be hoarded: whether a checkout may reserve its keys, and reserving them.

A hold is a promise: the buyer who got one has the keys for the unpaid window (15 minutes by
default) whatever anyone else does. Unlimited, that promise let one anonymous checkout of 4
keys make a 4-key product "Sold out" for everyone, and 18 unpaid orders hold all 40 keys of
another. So unpaid orders together may hold at most a share of a product's sellable keys
(``ShopSettings.hold_share_percent``, half by default, but never fewer than
``hold_min_keys``, one ordinary order, so the last keys can still be held):

    sellable = unsold keys (available or reserved) − keys owed to paid backorders
    hold cap = min(sellable, max(sellable × share ÷ 100, hold_min_keys)); 0 when share is 0

Beyond the cap checkout still succeeds, *without* a hold (``Order.holds_keys`` is false): the
buyer is told so before paying, and whoever pays first gets the keys that are not held. A
payer who finds none waits as a backorder, delivered on restock (or when a hold lapses), and
refunded automatically if none comes in time (``orders.backorder_refunds``). Checkout answers
``out_of_stock`` only when fewer keys than asked are left to sell at all, held or not.

**Exact under concurrency, without a product lock on the common path.** Two checkouts that
each count the holds and then reserve would both see room for one more and both take it: the
count must see every hold in flight. A lock every holding checkout of a product takes would
make it one hot lock again (``docs/performance.md``). Instead a product has ``HOLD_STRIPES``
advisory "stripes" (``orders.locks``):

* A checkout far below the cap takes *one* free stripe and then counts. Every hold that count
  cannot see is in a transaction holding another stripe, so at most ``HOLD_STRIPES − 1`` of
  them, each of at most ``max_per_order`` keys: a hold that fits with that margin to spare
  fits whatever they reserve. Up to ``HOLD_STRIPES`` such checkouts run at once, and they
  only ever contend for key rows (``SKIP LOCKED``), as before.
* A checkout near the cap (or when backorders wait, which also takes the line keeper) takes
  *all* stripes: it waits for the checkouts in flight, keeps new ones out, and counts exactly.
  That is one at a time per product, only where one at a time is what keeps the cap.

A checkout always tries the one-stripe path first; when its count says "near the cap" it gives
the stripe back (a rollback to the savepoint taken just before it releases the advisory lock)
and only then takes all of them, so no checkout ever waits for stripes while holding one.

The counts are bounded: unsold keys are counted only up to what the decision needs (about
``held + quantity + margin`` ÷ share), so a checkout costs the same with 100 keys or 100,000.
On SQLite, whose writers are serialised, the counts are plain and exact and no stripes exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from cardpool.models import CardKey
from cardpool.reservation import keys_release, keys_reserve
from cardpool.selectors import free_key_count, free_keys_filter
from core.errors import OutOfStock
from orders.locks import HOLD_STRIPES, lock_hold_stripe, lock_hold_stripes_all, lock_product
from orders.models import Order
from orders.stock import backorder_demand, shown_stock
from shop.models import ShopSettings

_KEYS = CardKey._meta.db_table
_ORDERS = Order._meta.db_table

# One statement: keys held by running holds, keys owed to backorders, and unsold keys counted
# up to ``probe`` (each status in the order of its own partial index). ``probe`` is the fewest
# sellable keys whose share covers ``held + extra``: reaching it means that much fits, without
# counting further.
_FIGURES = f"""
WITH held AS (
    SELECT count(*) AS n FROM {_KEYS}
    WHERE product_id = %(product)s AND status = 'reserved' AND reserved_until > %(now)s
), owed AS (
    SELECT coalesce(sum(quantity), 0) AS n FROM {_ORDERS}
    WHERE product_id = %(product)s AND status = 'backordered'
), probe AS (
    SELECT owed.n + CASE WHEN %(share)s > 0
        THEN ((held.n + %(extra)s) * 100 + %(share)s - 1) / %(share)s
        ELSE %(extra)s END AS n
    FROM held, owed
)
SELECT held.n, owed.n, probe.n,
    (SELECT count(*) FROM (
        SELECT 1 FROM {_KEYS} WHERE product_id = %(product)s AND status = 'available'
        ORDER BY product_id, id LIMIT (SELECT n FROM probe)) AS a)
  + (SELECT count(*) FROM (
        SELECT 1 FROM {_KEYS} WHERE product_id = %(product)s AND status = 'reserved'
        ORDER BY product_id, reserved_until LIMIT (SELECT n FROM probe)) AS r)
FROM held, owed, probe
"""  # noqa: S608 - table names from model metadata


@dataclass(frozen=True)
class HoldFigures:
    """What the hold decision reads of one product. ``unsold`` is exact only below ``probe``;
    at ``probe`` there are at least that many."""

    held: int
    owed: int
    unsold: int
    probe: int

    @property
    def exact(self) -> bool:
        return self.unsold < self.probe

    @property
    def sellable(self) -> int:
        """Keys left to sell, held or not (a lower bound when not ``exact``)."""
        return max(0, self.unsold - self.owed)


def hold_cap(*, sellable: int, share_percent: int, min_keys: int) -> int:
    """The most keys unpaid orders together may hold of a product with ``sellable`` keys."""
    if share_percent <= 0:
        return 0
    return min(sellable, max(sellable * share_percent // 100, min_keys))


def hold_figures(*, product_id: int, now: datetime, share_percent: int, extra: int) -> HoldFigures:
    """The product's figures, with unsold keys counted far enough to tell whether holds may
    grow by ``extra`` keys under ``share_percent`` (or, with no share, whether ``extra`` keys
    are left to sell)."""
    if connection.vendor != "postgresql":
        held = CardKey.objects.filter(
            product_id=product_id, status=CardKey.Status.RESERVED, reserved_until__gt=now
        ).count()
        unsold = CardKey.objects.filter(
            product_id=product_id, status__in=[CardKey.Status.AVAILABLE, CardKey.Status.RESERVED]
        ).count()
        return HoldFigures(held, backorder_demand(product_id), unsold, unsold + 1)
    params: dict[str, Any] = {
        "product": product_id,
        "now": now,
        "share": share_percent,
        "extra": extra,
    }
    with connection.cursor() as cursor:
        cursor.execute(_FIGURES, params)
        held, owed, probe, unsold = cursor.fetchone() or (0, 0, 1, 0)
    return HoldFigures(int(held), int(owed), int(unsold), int(probe))


def _fits(figures: HoldFigures, *, quantity: int, margin: int, shop: ShopSettings) -> bool:
    cap = hold_cap(
        sellable=figures.sellable,
        share_percent=shop.hold_share_percent,
        min_keys=shop.hold_min_keys,
    )
    return figures.held + quantity + margin <= cap


def _require_sellable(figures: HoldFigures, *, quantity: int, shop: ShopSettings) -> None:
    """``OutOfStock`` unless ``quantity`` keys are left to sell, held by others or not."""
    if figures.sellable >= quantity:
        return
    left = shown_stock(
        unsold=figures.unsold,
        held=figures.held,
        owed=figures.owed,
        share_percent=shop.hold_share_percent,
    )
    if left:
        raise OutOfStock(_("Only %(count)d left.") % {"count": left})
    raise OutOfStock(_("Sold out: no keys are left right now."))


def _reserve(*, order: Order, now: datetime) -> bool:
    """Reserve all of the order's keys, or none: a short pick (the free keys ran out) is put
    back at once, and the order goes without a hold."""
    got = keys_reserve(
        order_id=order.pk,
        product_id=order.product_id,
        quantity=order.quantity,
        until=order.hold_expires_at,
        now=now,
    )
    if got == order.quantity:
        return True
    if got:
        keys_release(order_id=order.pk)  # this transaction's own rows: nobody waits on them
    return False


def _held_on_one_stripe(*, order: Order, shop: ShopSettings, now: datetime) -> bool:
    """The parallel path: under one stripe, whether the hold fits even if every checkout
    holding another stripe reserves its most. If not (near the cap, or backorders waiting),
    the stripe is given back by rolling back to a savepoint, which releases the advisory lock
    taken after it: the caller then takes all stripes without holding one (no deadlock)."""
    # Keys the checkouts holding the other stripes may reserve unseen (see the docstring).
    margin = (HOLD_STRIPES - 1) * order.product.max_per_order
    before_stripe = transaction.savepoint()
    lock_hold_stripe(order.product_id)
    figures = hold_figures(
        product_id=order.product_id,
        now=now,
        share_percent=shop.hold_share_percent,
        extra=order.quantity + margin,
    )
    if not figures.owed and not figures.exact:  # at the probe: that much fits
        transaction.savepoint_commit(before_stripe)
        return True
    transaction.savepoint_rollback(before_stripe)
    return False


def order_hold_keys(*, order: Order, shop: ShopSettings, now: datetime) -> bool:
    """Reserve a new pending order's keys for its unpaid window if the product's hold cap
    allows; return whether it did. Runs in the checkout's transaction, after the buyer's
    locks. Raises ``OutOfStock`` (the caller rolls back) when fewer keys than the order's
    quantity are left to sell at all."""
    product_id, quantity = order.product_id, order.quantity
    share = shop.hold_share_percent
    if share <= 0:
        figures = hold_figures(product_id=product_id, now=now, share_percent=0, extra=quantity)
        _require_sellable(figures, quantity=quantity, shop=shop)
        return False
    if connection.vendor == "postgresql" and _held_on_one_stripe(order=order, shop=shop, now=now):
        return _reserve(order=order, now=now)
    lock_hold_stripes_all(product_id)
    figures = hold_figures(product_id=product_id, now=now, share_percent=share, extra=quantity)
    if figures.owed:
        # Paid backorders are first in line for free keys: take the line keeper, as a
        # restock's delivery does, and count again under it.
        lock_product(product_id)
        figures = hold_figures(product_id=product_id, now=now, share_percent=share, extra=quantity)
    _require_sellable(figures, quantity=quantity, shop=shop)
    if not _fits(figures, quantity=quantity, margin=0, shop=shop):
        return False
    if figures.owed and free_key_count(product_id, now=now) - figures.owed < quantity:
        return False
    return _reserve(order=order, now=now)


# Enough to tell a buyer "plenty": counting further would only cost time.
FREE_KEYS_COUNTED_UP_TO = 1000


def keys_free_and_held(*, product_id: int, now: datetime) -> tuple[int, int]:
    """``(free, held)`` of one product: keys nobody holds (beyond those owed to backorders,
    counted up to ``FREE_KEYS_COUNTED_UP_TO``) and keys held by unpaid orders. What a buyer
    without a hold is told before paying."""
    held = CardKey.objects.filter(
        product_id=product_id, status=CardKey.Status.RESERVED, reserved_until__gt=now
    ).count()
    owed = backorder_demand(product_id)
    free = CardKey.objects.filter(free_keys_filter(now), product_id=product_id)[
        : FREE_KEYS_COUNTED_UP_TO + owed
    ].count()
    return max(0, free - owed), held
