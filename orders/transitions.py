"""The order status pipeline. Allowed transitions are data; every change goes through here.

``order_transition`` does a conditional UPDATE (``WHERE status = from``), so two processes
racing to move the same order cannot both succeed, and appends an ``OrderEvent`` row so the
owner can always see who or what moved the order and why. Facts that leave the status alone
are written by the constructors of ``orders.events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from cardpool.reservation import keys_release
from orders.live import status_changed
from orders.models import Order, OrderEvent, OrderEventKind
from orders.models import OrderStatus as S
from orders.notices.record import notices_record, step_notices

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
    """One status change of a path: where to, and what the history says about it. ``kind``
    defaults to the kind named after the status entered (``expired``, ``refunded`` …); a
    status without one of its own (``on_hold``) must say why it is entered."""

    to_status: str
    kind: OrderEventKind | None = None
    message: str = ""
    data: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Checked here, at the caller, not at the INSERT: an unknown kind is a ValueError.
        object.__setattr__(self, "kind", OrderEventKind(self.kind or self.to_status))


_EVENT_COLUMNS = (
    "order_id",
    "kind",
    "from_status",
    "to_status",
    "message",
    "data",
    "actor_id",
    "created_at",
)


_ORDER_FIELDS = {f.attname: f for f in Order._meta.concrete_fields}


def _update_status(order_id: int, from_status: str, to_status: str, fields: dict) -> bool:
    """``UPDATE … SET status = to, <fields> WHERE id = … AND status = from``: the conditional
    update that makes two racing changes of one order impossible. Plain SQL: it runs in every
    delivery, and compiling the ORM's UPDATE cost more than the database spends on it."""
    assignments = ["status = %s"]
    params: list[Any] = [to_status]
    for name, value in fields.items():
        field = _ORDER_FIELDS[name]  # a KeyError here is a caller's typo, not data
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(assignments)} WHERE id = %s AND status = %s",  # noqa: S608 - model metadata
            [*params, order_id, from_status],
        )
        return cursor.rowcount == 1


def _insert_events(order_id: int, from_status: str, steps: Sequence[Step], actor_id) -> None:
    """One multi-row INSERT for the event rows of a path."""
    now = timezone.now()
    rows, params, previous = [], [], from_status
    data_field = OrderEvent._meta.get_field("data")
    created_field = OrderEvent._meta.get_field("created_at")
    for step in steps:
        rows.append("(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")")
        params += [
            order_id,
            step.kind,
            previous,
            step.to_status,
            step.message,
            data_field.get_db_prep_save(step.data or {}, connection),
            actor_id,
            created_field.get_db_prep_save(now, connection),
        ]
        previous = step.to_status
    table = connection.ops.quote_name(OrderEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(_EVENT_COLUMNS)}) VALUES {', '.join(rows)}",  # noqa: S608 - constants
            params,
        )


def order_transition_path(
    *, order: Order, steps: Sequence[Step], actor: Any = None, **fields: Any
) -> Order:
    """Move ``order`` through ``steps`` (e.g. paid, then delivered), every step checked against
    the allowed transitions, in one conditional UPDATE from where it is to where it ends, and
    one event row per step. A payment that delivers at once thus costs one UPDATE, not two,
    and sends one live update (``orders.live``), of where it ends."""
    from_status = status = order.status
    for step in steps:
        if step.to_status not in ALLOWED_TRANSITIONS.get(status, frozenset()):
            raise InvalidTransition(
                f"{order.order_no}: {status} -> {step.to_status} is not allowed"
            )
        status = step.to_status
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    # No savepoint: the caller's transaction is the unit of work, and a failed step must undo
    # everything it did anyway.
    with transaction.atomic(savepoint=False):
        if not _update_status(order.pk, from_status, status, fields):
            raise InvalidTransition(f"{order.order_no} changed concurrently from {from_status}")
        _insert_events(order.pk, from_status, steps, actor_id)
        notices_record(
            order_id=order.pk, notices=step_notices((str(s.kind), s.to_status) for s in steps)
        )
        if status in RELEASES_KEYS and order.delivered_at is None:
            keys_release(order_id=order.pk)
        status_changed(order, status)  # pushed to its page and the feed once this commits
    order.status = status
    for name, value in fields.items():
        setattr(order, name, value)
    return order


def order_transition(
    *,
    order: Order,
    to_status: str,
    kind: OrderEventKind | None = None,
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
