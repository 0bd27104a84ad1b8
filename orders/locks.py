"""Every row lock the orders app takes, in one place.

Global lock order (see ``orders/services.py``): buyer advisory locks → hold stripes (checkout
only) → payment event → order → card keys → product (line keeper, rare paths only) →
commission ledger. Each helper locks only its own table's row: a joined product row must
never be locked with an order, or every delivery of one product would wait for the one before
it. On SQLite ``select_for_update`` and advisory locks do not exist; there IMMEDIATE
transactions serialise writers instead.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import connection

from core.locks import lock_one
from orders.models import Order, PaymentEvent
from shop.models import Product


def lock_payment_event(event_id: int, *, skip_locked: bool = False) -> PaymentEvent | None:
    return lock_one(PaymentEvent, "id", event_id, skip_locked=skip_locked)


def lock_order(order_id: int) -> Order | None:
    return lock_one(Order, "id", order_id)


def lock_order_by_no(order_no: str) -> Order | None:
    return lock_one(Order, "order_no", order_no)


def lock_order_by_payment_intent(payment_intent: str) -> Order | None:
    if not payment_intent:
        return None
    return lock_one(Order, "payment_intent", payment_intent)


def lock_product(product_id: int) -> None:
    """The line keeper of one product, for the rare paths that must respect backorders'
    places in line: a checkout or a payment that finds backorders waiting, and restocks.
    The normal checkout and delivery never take it: they contend only for key rows."""
    # NO KEY UPDATE: new orders and keys may still reference the product (their foreign-key
    # checks take KEY SHARE, which FOR UPDATE would block).
    list(Product.objects.select_for_update(no_key=True).filter(pk=product_id).values_list("pk"))


def _advisory_key(name: str) -> int:
    """A 64-bit advisory lock key for ``name``, the same in every process."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_buyer(*identities: str) -> None:
    """Serialise checkouts of one buyer (email, IP, network) so unpaid-order limits are
    counted exactly.

    PostgreSQL transaction-scoped advisory locks, taken in sorted order so two checkouts that
    share an email but not an IP cannot deadlock. SQLite needs none (IMMEDIATE transactions).
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_advisory_key(f"buyer:{ident}") for ident in identities if ident})
    with connection.cursor() as cursor:  # one round trip; unnest keeps the sorted order
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


# Checkouts of one product that may take a hold run in parallel up to this many at a time, each
# holding one stripe; how far below the share cap that is safe is ``orders.holds``' business.
HOLD_STRIPES = 8


def _hold_stripe_keys(product_id: int) -> list[int]:
    return [_advisory_key(f"hold:{product_id}:{stripe}") for stripe in range(HOLD_STRIPES)]


def lock_hold_stripe(product_id: int) -> None:
    """One of the product's hold stripes, whichever is free (a random one first; when all are
    taken, wait for one). Never waits while one is free, so checkouts far from the product's
    hold cap never wait for each other (``orders.holds``)."""
    if connection.vendor != "postgresql":
        return
    keys = _hold_stripe_keys(product_id)
    first = secrets.randbelow(HOLD_STRIPES)
    order = keys[first:] + keys[:first]
    with connection.cursor() as cursor:
        for key in order:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
            if cursor.fetchone()[0]:
                return
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [order[0]])


def lock_hold_stripes_all(product_id: int) -> None:
    """Every hold stripe of the product, in one fixed order: waits for each checkout holding
    one to commit, and keeps new ones out, so the holds then counted are all of them. Taken
    by a checkout near the product's hold cap, where the count must be exact."""
    if connection.vendor != "postgresql":
        return
    keys = sorted(_hold_stripe_keys(product_id))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])
