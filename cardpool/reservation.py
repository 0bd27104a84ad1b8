"""Reserving keys for a paid order: the only code that locks card-key rows.

Called inside the delivery transaction, after the order and product locks (see the lock order
in ``orders/services.py``). ``SKIP LOCKED`` lets deliveries of different orders pick disjoint
rows without waiting; the conditional UPDATE (``status = 'available'``) and the constraints on
``CardKey`` make it impossible for a key to be sold twice or an order to get a slot twice.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Case, IntegerField, Value, When

from cardpool.models import CardKey


class ReservationConflict(Exception):
    """The keys picked were taken in the meantime; the transaction must roll back."""


def reserve_keys_for_order(*, order, quantity: int, now: datetime) -> list[int]:
    """Mark ``quantity`` available keys of the order's product sold to it; return their ids.

    Returns ``[]`` without writing anything when fewer than ``quantity`` keys can be had.
    """
    qs = CardKey.objects.filter(product_id=order.product_id, status=CardKey.Status.AVAILABLE)
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    ids = list(qs.order_by("pk").values_list("pk", flat=True)[:quantity])
    if len(ids) < quantity:
        return []
    slots = Case(
        *[When(pk=key_id, then=Value(slot)) for slot, key_id in enumerate(ids, start=1)],
        output_field=IntegerField(),
    )
    updated = CardKey.objects.filter(pk__in=ids, status=CardKey.Status.AVAILABLE).update(
        status=CardKey.Status.SOLD, order=order, slot=slots, sold_at=now
    )
    if updated != quantity:
        raise ReservationConflict(f"expected {quantity} keys, got {updated}")
    return ids
