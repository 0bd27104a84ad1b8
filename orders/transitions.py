"""The order status pipeline. Allowed transitions are data; every change goes through here.

``order_transition`` does a conditional UPDATE (``WHERE status = from``), so two processes
racing to move the same order cannot both succeed, and appends an ``OrderEvent`` row so the
owner can always see who or what moved the order and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from cardpool.reservation import keys_release
from orders.models import Order, OrderEvent
from orders.models import OrderStatus as S

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PAID, S.EXPIRED, S.CANCELLED}),
    # A payment may land after the window closed or after the buyer gave up: never lose it.
    S.EXPIRED: frozenset({S.PAID}),
    S.CANCELLED: frozenset({S.PAID}),
    S.PAID: frozenset({S.DELIVERED, S.BACKORDERED, S.ON_HOLD, S.REFUND_REQUESTED, S.REFUNDED}),
    S.ON_HOLD: frozenset({S.DELIVERED, S.BACKORDERED, S.REFUND_REQUESTED, S.REFUNDED}),
    S.BACKORDERED: frozenset({S.DELIVERED, S.ON_HOLD, S.REFUND_REQUESTED, S.REFUNDED}),
    # A full refund of an undelivered order was asked of the provider: nothing may deliver it
    # any more. The provider's charge.refunded makes it refunded; a refused refund sends it
    # back to the owner's review.
    S.REFUND_REQUESTED: frozenset({S.REFUNDED, S.ON_HOLD}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

PAID_STATUSES = frozenset(
    {S.PAID, S.DELIVERED, S.ON_HOLD, S.BACKORDERED, S.REFUND_REQUESTED, S.REFUNDED}
)
# Paid but without keys yet: a full refund of these must first stop any delivery.
PAID_UNDELIVERED = frozenset({S.PAID, S.ON_HOLD, S.BACKORDERED})
# Entering these, an order that was never delivered gives its reserved keys back to the pool.
# An order put on hold claims nothing while the owner reviews it: its keys go on sale, and an
# approval queues it from then on (``orders.delivery.claim_time``).
RELEASES_KEYS = frozenset({S.EXPIRED, S.CANCELLED, S.REFUNDED, S.ON_HOLD, S.REFUND_REQUESTED})


class InvalidTransition(Exception):
    pass


@dataclass(frozen=True)
class Step:
    """One status change of a path: where to, and what the history says about it."""

    to_status: str
    kind: str | None = None
    message: str = ""
    data: dict[str, Any] | None = None


def order_transition_path(
    *, order: Order, steps: Sequence[Step], actor: Any = None, **fields: Any
) -> Order:
    """Move ``order`` through ``steps`` (e.g. paid, then delivered), every step checked against
    the allowed transitions, in one conditional UPDATE from where it is to where it ends, and
    one event row per step. A payment that delivers at once thus costs one UPDATE, not two."""
    from_status = status = order.status
    for step in steps:
        if step.to_status not in ALLOWED_TRANSITIONS.get(status, frozenset()):
            raise InvalidTransition(
                f"{order.order_no}: {status} -> {step.to_status} is not allowed"
            )
        status = step.to_status
    actor_or_none = actor if getattr(actor, "pk", None) else None
    # No savepoint: the caller's transaction is the unit of work, and a failed step must undo
    # everything it did anyway.
    with transaction.atomic(savepoint=False):
        updated = Order.objects.filter(pk=order.pk, status=from_status).update(
            status=status, **fields
        )
        if updated != 1:
            raise InvalidTransition(f"{order.order_no} changed concurrently from {from_status}")
        events, previous = [], from_status
        for step in steps:
            events.append(
                OrderEvent(
                    order=order,
                    kind=step.kind or step.to_status,
                    from_status=previous,
                    to_status=step.to_status,
                    message=step.message,
                    data=step.data or {},
                    actor=actor_or_none,
                )
            )
            previous = step.to_status
        OrderEvent.objects.bulk_create(events)
        if status in RELEASES_KEYS and order.delivered_at is None:
            keys_release(order_id=order.pk)
    order.status = status
    for name, value in fields.items():
        setattr(order, name, value)
    return order


def order_transition(
    *,
    order: Order,
    to_status: str,
    kind: str | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
    actor: Any = None,
    **fields: Any,
) -> Order:
    """Move ``order`` to ``to_status`` (plus ``fields``) if allowed and nobody moved it first."""
    return order_transition_path(
        order=order,
        steps=[Step(to_status, kind=kind, message=message, data=data)],
        actor=actor,
        **fields,
    )


def order_note(
    *, order: Order, kind: str, message: str = "", data: dict[str, Any] | None = None, actor=None
) -> OrderEvent:
    """Record a fact about the order that does not change its status."""
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        message=message,
        data=data or {},
        actor=actor if getattr(actor, "pk", None) else None,
    )
