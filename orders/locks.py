"""Every row lock the orders app takes, in one place.

Global lock order (see ``orders/services.py``): buyer advisory locks → payment event → order →
product (stock gate) → card keys → commission ledger. On SQLite ``select_for_update`` is a
no-op; there IMMEDIATE transactions serialise writers instead.
"""

from __future__ import annotations

import hashlib

from django.db import connection

from orders.models import Order, PaymentEvent
from shop.models import Product


def lock_payment_event(event_id: int) -> PaymentEvent | None:
    return PaymentEvent.objects.select_for_update().filter(pk=event_id).first()


def lock_order(order_id: int) -> Order | None:
    return Order.objects.select_for_update().select_related("product").filter(pk=order_id).first()


def lock_order_by_no(order_no: str) -> Order | None:
    return (
        Order.objects.select_for_update()
        .select_related("product")
        .filter(order_no=order_no)
        .first()
    )


def lock_order_by_payment_intent(payment_intent: str) -> Order | None:
    if not payment_intent:
        return None
    return (
        Order.objects.select_for_update()
        .select_related("product")
        .filter(payment_intent=payment_intent)
        .first()
    )


def lock_product(product_id: int) -> None:
    """The stock gate: checkout and delivery of one product take turns here."""
    list(Product.objects.select_for_update().filter(pk=product_id).values_list("pk"))


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
