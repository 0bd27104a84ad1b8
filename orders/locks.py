"""Every row lock the orders app takes, in one place.

Global lock order (see ``orders/services.py``): buyer advisory locks → payment event → order →
card keys → product (line keeper, rare paths only) → commission ledger. Each helper locks only
its own table's row: a joined product row must never be locked with an order, or every
delivery of one product would wait for the one before it. On SQLite
``select_for_update`` is a no-op; there IMMEDIATE transactions serialise writers instead.
"""

from __future__ import annotations

import hashlib

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


def lock_buyer(*identities: str) -> None:
    """Serialise checkouts of one buyer (email, IP) so unpaid-order limits are counted exactly.

    PostgreSQL transaction-scoped advisory locks, taken in sorted order so two checkouts that
    share an email but not an IP cannot deadlock. SQLite needs none (IMMEDIATE transactions).
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(
        {
            int.from_bytes(
                hashlib.sha256(f"buyer:{ident}".encode()).digest()[:8], "big", signed=True
            )
            for ident in identities
            if ident
        }
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
