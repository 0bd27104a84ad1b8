"""Writing what the owner may want to hear about: a ``PendingNotice`` row in the transaction
that causes it — the status change, or the outbox giving up on the buyer's last channel.

One small INSERT, nothing read and nothing shared locked, so the sale's transaction stays as
fast as it was; which destinations want the event is decided later, when it is batched.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from orders.models import OrderEventKind, OrderStatus
from orders.notices.models import NoticeKind, PendingNotice

# The status steps the owner hears about, by the kind of their history row.
STEP_NOTICES = {
    OrderEventKind.PAID: NoticeKind.NEW_ORDER,
    OrderEventKind.BACKORDERED: NoticeKind.BACKORDER,
}


def step_notices(steps: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(kind, to_status)`` of a transition's steps → the ``(notice kind, detail)`` to write:
    one per transition, the one that asks most of the owner, so each order is counted once —
    a payment that ends on hold is a hold, not also a new order. Every step into ``on_hold``
    is a hold, whatever put it there (risk control, a payment that does not match, a refund
    the provider refused)."""
    found: dict[str, str] = {}
    for kind, to_status in steps:
        if to_status == OrderStatus.ON_HOLD:
            found[NoticeKind.HOLD] = str(OrderEventKind(kind).label)
        elif kind in STEP_NOTICES:
            found[STEP_NOTICES[OrderEventKind(kind)]] = ""
    for notice in (NoticeKind.HOLD, NoticeKind.BACKORDER, NoticeKind.NEW_ORDER):
        if notice in found:
            return [(notice, found[notice])]
    return []


def notices_record(*, order_id: int | None, notices: Iterable[tuple[str, str]]) -> None:
    """Write ``notices`` (``(kind, detail)``) for ``order_id`` in the current transaction."""
    stamp = timezone.now()
    rows = [
        PendingNotice(kind=kind, order_id=order_id, detail=detail[:200], created_at=stamp)
        for kind, detail in notices
    ]
    if rows:
        PendingNotice.objects.bulk_create(rows)
