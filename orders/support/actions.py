"""The owner's answers that change an order, shared by the ticket page and the order page:
replace a key from the pool, refund.

**Replace** is one transaction under the order lock: the old key voided, a free key sold into
its slot, the ``KeyReplacement`` row, the history event and the buyer's message (through the
outbox). ``KeyReplacement.old_key`` is unique, so of two replaces racing for one key exactly
one commits, whatever path they took; the second finds the key already void and changes
nothing. Nobody who presses it sees a key: the buyer gets the new one on the order page and
in the message.

**Refund** goes through ``orders.payments.refunds.payment_refund``, the one refund path (the
order becomes ``refunded`` when the provider's ``charge.refunded`` comes back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from cardpool.models import CardKey
from cardpool.reservation import key_void_and_replace
from core.errors import KamiError
from core.roles import Role, has_role, is_owner
from orders.events import event_key_replaced
from orders.locks import lock_order
from orders.models import Order, OrderStatus
from orders.outbox.models import MessagePurpose
from orders.payments.refunds import payment_refund
from orders.support.models import KeyReplacement, Ticket, TicketStatus
from orders.support.tickets import buyer_message_enqueue

REPLACEABLE = frozenset({OrderStatus.DELIVERED})
REASON_MAX = 300


def may_replace(user: Any) -> bool:
    """Owner and staff (staff never see the key they replace)."""
    return is_owner(user) or has_role(user, Role.STAFF) or user.has_perm("orders.reply_ticket")


def may_refund(user: Any) -> bool:
    """Finance and the owner only."""
    return is_owner(user) or has_role(user, Role.FINANCE)


@dataclass(frozen=True)
class ActionOutcome:
    done: bool
    message: str


class _NothingToReplace(Exception):
    """Rolls the replacement's savepoint back: the key voided must stay the buyer's."""


def order_key_replace(
    *,
    order_id: int,
    key_id: int,
    actor: Any,
    ticket: Ticket | None = None,
    reason: str = "",
) -> ActionOutcome:
    """Void the order's sold key ``key_id`` and deliver a key from the pool in its place."""
    try:
        with transaction.atomic():
            order = lock_order(order_id)
            if order is None:
                return ActionOutcome(False, "No such order.")
            if order.status not in REPLACEABLE:
                return ActionOutcome(
                    False, f"{order.order_no}: {order.get_status_display()}, no key replaced."
                )
            new_key_id = key_void_and_replace(key_id=key_id, order_id=order.pk, now=timezone.now())
            if new_key_id is None:
                raise _NothingToReplace
            replacement = KeyReplacement.objects.create(
                order=order,
                ticket=ticket,
                slot=_slot_of(new_key_id),
                old_key_id=key_id,
                new_key_id=new_key_id,
                actor=actor if getattr(actor, "pk", None) else None,
                reason=reason[:REASON_MAX],
            )
            event_key_replaced(
                order,
                slot=replacement.slot,
                old_key_id=key_id,
                new_key_id=new_key_id,
                ticket_no=ticket.ticket_no if ticket else "",
                actor=actor,
            )
            buyer_message_enqueue(
                order=order,
                purpose=MessagePurpose.KEY_REPLACED,
                payload={"replacement": replacement.pk, "slot": replacement.slot},
            )
            if ticket is not None:
                Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.ANSWERED)
    except _NothingToReplace:
        return _why_not(order_id=order_id, key_id=key_id)
    except IntegrityError:
        # Another replace of the same key committed first (``old_key`` is unique).
        return ActionOutcome(False, "That key was already replaced; nothing changed.")
    return ActionOutcome(True, f"{order.order_no}: key {replacement.slot} replaced from the pool.")


def _slot_of(key_id: int) -> int:
    slot = CardKey.objects.filter(pk=key_id).values_list("slot", flat=True).get()
    assert slot is not None  # a sold key always has its slot (CardKey's check constraint)
    return slot


def _why_not(*, order_id: int, key_id: int) -> ActionOutcome:
    if KeyReplacement.objects.filter(old_key_id=key_id).exists():
        return ActionOutcome(False, "That key was already replaced; nothing changed.")
    if not CardKey.objects.filter(pk=key_id, order_id=order_id).exists():
        return ActionOutcome(False, "That key is not one of this order's; nothing changed.")
    return ActionOutcome(False, "No free key in the pool: import keys, then replace.")


def order_refund(*, order: Order, actor: Any) -> ActionOutcome:
    """A full refund of what is left, through the payment provider. Outside any transaction."""
    try:
        payment_refund(order=order, actor=actor)
    except KamiError as exc:
        return ActionOutcome(False, f"{order.order_no}: refund not made: {exc.message}")
    return ActionOutcome(True, f"{order.order_no}: refund asked of the payment provider.")


def replaceable_keys(order: Order) -> list[dict[str, Any]]:
    """The order's sold keys as the admin may see them: slot and row id, never the text."""
    rows = CardKey.objects.filter(order=order, status=CardKey.Status.SOLD).order_by("slot")
    return [{"id": pk, "slot": slot} for pk, slot in rows.values_list("pk", "slot")]
