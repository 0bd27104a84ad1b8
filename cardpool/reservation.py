"""Holding and selling keys row by row: the only code that locks card-key rows.

A product is never a hot row. Checkout *reserves* free key rows for its pending order
(``reserved_until`` = the order's hold); payment *sells* the rows its order reserved; an order
that lost its reservation (it paid late, or was expired while its payment was on the way)
*takes* free rows. Rows are picked with ``FOR UPDATE SKIP LOCKED``, so two buyers of one
product never wait for each other: each moves on to the next free row. The conditional
``WHERE status = …`` on every UPDATE and the constraints on ``CardKey`` (status matches owner;
unique ``(order, slot)``) make it impossible for a key to be sold twice or an order to be given
a slot twice, whatever the code path. On SQLite, which has no row locks, IMMEDIATE
transactions serialise writers and the same conditional UPDATEs keep it exact.

Free stock is ``available`` rows plus ``reserved`` rows whose ``reserved_until`` has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, IntegerField, Q, Value, When

from cardpool.models import CardKey

S = CardKey.Status
TABLE = CardKey._meta.db_table

# Pick free rows of one product and give each the next slot of ``slots``, in one statement.
# ``source`` is the WHERE clause naming which rows count as free for this pick.
_PICK_AND_ASSIGN = """
UPDATE {table} AS k
SET status = %(status)s, order_id = %(order)s, slot = (%(slots)s::int[])[p.n],
    reserved_until = %(until)s, sold_at = %(sold_at)s
FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM (
        SELECT id FROM {table}
        WHERE product_id = %(product)s AND {source}
        ORDER BY {order_by} LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS free
) AS p
WHERE k.id = p.id AND {recheck}
RETURNING k.slot
"""

_SOURCES = {
    # rows never reserved, or released
    "available": ("status = 'available'", "id", "k.status = 'available'"),
    # reservations whose hold has run out: anyone's now
    "lapsed": (
        "status = 'reserved' AND reserved_until <= %(now)s AND order_id <> %(order)s",
        "reserved_until, id",
        "k.status = 'reserved' AND k.reserved_until <= %(now)s",
    ),
    # reservations of the given orders (pending orders behind the taker in line)
    "of_orders": (
        "status = 'reserved' AND order_id = ANY(%(from_orders)s)",
        "id DESC",
        "k.status = 'reserved'",
    ),
}


def _pick_sql(source: str) -> str:
    where, order_by, recheck = _SOURCES[source]
    return _PICK_AND_ASSIGN.format(table=TABLE, source=where, order_by=order_by, recheck=recheck)


def _pick_orm(
    source: str,
    *,
    product_id: int,
    order_id: int,
    slots: Sequence[int],
    fields: dict[str, Any],
    params: dict[str, Any],
) -> list[int]:
    """The same pick for databases without row locks (SQLite: writers are serialised)."""
    qs = CardKey.objects.filter(product_id=product_id)
    if source == "available":
        qs, order_by = qs.filter(status=S.AVAILABLE), ["pk"]
    elif source == "lapsed":
        qs = qs.filter(status=S.RESERVED, reserved_until__lte=params["now"]).exclude(
            order_id=order_id
        )
        order_by = ["reserved_until", "pk"]
    else:
        qs = qs.filter(status=S.RESERVED, order_id__in=params["from_orders"])
        order_by = ["-pk"]
    ids = sorted(qs.order_by(*order_by).values_list("pk", flat=True)[: len(slots)])
    if not ids:
        return []
    slot_of = Case(
        *[When(pk=pk, then=Value(slot)) for pk, slot in zip(ids, slots, strict=False)],
        output_field=IntegerField(),
    )
    recheck = Q(status=S.AVAILABLE) if source == "available" else Q(status=S.RESERVED)
    updated = CardKey.objects.filter(recheck, pk__in=ids).update(
        order_id=order_id, slot=slot_of, **fields
    )
    return list(slots[:updated])


def _pick(
    source: str,
    *,
    product_id: int,
    order_id: int,
    slots: Sequence[int],
    status: str,
    until: datetime | None,
    now: datetime,
    from_orders: Sequence[int] = (),
) -> list[int]:
    """Give up to ``len(slots)`` free rows of ``source`` to the order; return the slots filled."""
    if not slots:
        return []
    sold_at = now if status == S.SOLD else None
    params: dict[str, Any] = {
        "status": status,
        "order": order_id,
        "slots": list(slots),
        "until": until,
        "sold_at": sold_at,
        "product": product_id,
        "limit": len(slots),
        "now": now,
        "from_orders": list(from_orders),
    }
    if connection.vendor != "postgresql":
        fields = {"status": status, "reserved_until": until, "sold_at": sold_at}
        return _pick_orm(
            source,
            product_id=product_id,
            order_id=order_id,
            slots=slots,
            fields=fields,
            params=params,
        )
    with connection.cursor() as cursor:
        cursor.execute(_pick_sql(source), params)
        return [row[0] for row in cursor.fetchall()]


def _fill(
    sources: Sequence[str],
    *,
    product_id: int,
    order_id: int,
    slots: Sequence[int],
    status: str,
    until: datetime | None,
    now: datetime,
    from_orders: Sequence[int] = (),
) -> list[int]:
    """Fill ``slots`` from each source in turn until none is left; return the slots filled."""
    filled: list[int] = []
    for source in sources:
        rest = [slot for slot in slots if slot not in set(filled)]
        if not rest:
            break
        filled += _pick(
            source,
            product_id=product_id,
            order_id=order_id,
            slots=rest,
            status=status,
            until=until,
            now=now,
            from_orders=from_orders,
        )
    return filled


def keys_reserve(
    *, order_id: int, product_id: int, quantity: int, until: datetime, now: datetime
) -> int:
    """Reserve ``quantity`` free keys for a pending order until ``until``; return how many
    were had. The caller rolls its transaction back when that is fewer than asked."""
    got = _fill(
        ("available", "lapsed"),
        product_id=product_id,
        order_id=order_id,
        slots=list(range(1, quantity + 1)),
        status=S.RESERVED,
        until=until,
        now=now,
    )
    return len(got)


def keys_sell_reserved(*, order_id: int, now: datetime) -> list[int]:
    """Sell the order the keys it reserved, lapsed or not (nobody took them); return their
    slots. One statement: this is the whole key work of a normal delivery."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET status = %s, sold_at = %s, reserved_until = NULL "  # noqa: S608
            "WHERE order_id = %s AND status = %s RETURNING slot",
            [S.SOLD.value, now, order_id, S.RESERVED.value],
        )
        return [row[0] for row in cursor.fetchall()]


def keys_take_free(
    *,
    order_id: int,
    product_id: int,
    slots: Sequence[int],
    now: datetime,
    also_from_orders: Sequence[int] = (),
) -> list[int]:
    """Sell the order free keys for ``slots``; return the slots filled.

    ``also_from_orders`` names pending orders that stand behind this one in line (it paid
    inside its hold, they checked out later): their reserved keys may be taken too, once the
    free ones run out. They take free keys, or wait as backorders, when they pay.
    """
    sources = ("available", "lapsed", "of_orders") if also_from_orders else ("available", "lapsed")
    return _fill(
        sources,
        product_id=product_id,
        order_id=order_id,
        slots=slots,
        status=S.SOLD,
        until=None,
        now=now,
        from_orders=also_from_orders,
    )


def keys_release(*, order_id: int, undelivered: bool = False) -> int:
    """Put back the keys the order reserved (expiry, cancellation, refund before delivery).

    ``undelivered=True`` also puts back keys sold to it in the caller's transaction, for a
    delivery that fell short and becomes a backorder; only an order without a delivery may be
    released that way, since a delivered order's keys are the buyer's for good.
    """
    statuses = [S.RESERVED, S.SOLD] if undelivered else [S.RESERVED]
    return CardKey.objects.filter(order_id=order_id, status__in=statuses).update(
        status=S.AVAILABLE, order=None, slot=None, reserved_until=None, sold_at=None
    )


def key_void_and_replace(*, key_id: int, order_id: int, now: datetime) -> int | None:
    """Void the sold key ``key_id`` of the order and sell the order a free key in its slot, in
    the caller's transaction; return the new key's id, or None (nothing changed) when the key
    is not that order's sold key any more (replaced already) or no key is free.

    The old row is locked first; the conditional UPDATE voids it only while it is still sold to
    the order, so a second replace of the same key finds nothing to void.
    """
    old = (
        CardKey.objects.select_for_update()
        .filter(pk=key_id, order_id=order_id, status=S.SOLD)
        .values("slot", "product_id")
        .first()
    )
    if old is None:
        return None
    voided = CardKey.objects.filter(pk=key_id, order_id=order_id, status=S.SOLD).update(
        status=S.VOID, order=None, slot=None, sold_at=None, reserved_until=None
    )
    slot: int = old["slot"] or 0  # a sold key always has one (the check constraint)
    if not voided:
        return None
    filled = keys_take_free(order_id=order_id, product_id=old["product_id"], slots=[slot], now=now)
    if not filled:
        return None  # the caller rolls back: the old key must stay the buyer's
    return (
        CardKey.objects.filter(order_id=order_id, slot=slot, status=S.SOLD)
        .values_list("pk", flat=True)
        .get()
    )
