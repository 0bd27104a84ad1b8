"""The order's history notes: one constructor per kind of event (as Saleor's ``order/events``).

``OrderEventKind`` is the fixed list of what an order's history may say. Status changes are
written by ``orders.transitions`` (a ``Step`` names its kind from this list); every other fact
about an order — a payment that did not settle, a second payment, a dispute, a risk decision,
the owner's review — is written here, by its own constructor, so the message and the shape of
``data`` of each kind live in exactly one place. Nothing else inserts ``OrderEvent`` rows
(``tests/orders/test_events.py`` scans the tree for it).
"""

from __future__ import annotations

from typing import Any

from orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from orders.notices.models import NoticeKind
from orders.notices.record import notices_record
from orders.risk import FLAG, HOLD, Decision

__all__ = [
    "OrderEventKind",
    "event_commission_skipped",
    "event_dispute_opened",
    "event_key_replaced",
    "event_keys_resent",
    "event_message_failed",
    "event_order_created",
    "event_partial_refund",
    "event_payment_not_settled",
    "event_refund_asked",
    "event_review_recorded",
    "event_risk_noted",
    "event_second_payment",
    "event_ticket_opened",
    "event_ticket_replied",
]

K = OrderEventKind

# The history note of each non-blocking risk decision at checkout. ``risk_hold`` itself is the
# status step at payment (``orders.payments.processing``).
RISK_NOTE_KIND = {HOLD: K.RISK_HOLD_DECIDED, FLAG: K.RISK_FLAG}


def _record(
    order: Order,
    kind: OrderEventKind,
    *,
    message: str = "",
    data: dict[str, Any] | None = None,
    actor: Any = None,
    to_status: str = "",
) -> OrderEvent:
    """The one insert of a history row outside the status pipeline."""
    return OrderEvent.objects.create(
        order=order,
        kind=OrderEventKind(kind),
        to_status=to_status,
        message=message,
        data=data or {},
        actor=actor if getattr(actor, "pk", None) else None,
    )


def event_order_created(order: Order) -> OrderEvent:
    """Checkout created the order (pending; its keys reserved, or not: ``orders.holds``)."""
    message = (
        ""
        if order.holds_keys
        else "No keys held: unpaid orders already hold the product's share; first to pay wins."
    )
    return _record(
        order,
        K.CREATED,
        to_status=OrderStatus.PENDING,
        message=message,
        data={"quantity": order.quantity, "amount": order.amount, "holds_keys": order.holds_keys},
    )


def event_risk_noted(order: Order, decision: Decision) -> OrderEvent:
    """A non-blocking risk decision at checkout: hold at payment, or flag."""
    return _record(
        order, RISK_NOTE_KIND[decision.outcome], message=decision.reason, data=decision.data
    )


def event_payment_not_settled(order: Order, facts: dict[str, Any]) -> OrderEvent:
    """The checkout completed, but its payment has not settled (e.g. a delayed method)."""
    return _record(order, K.PAYMENT_NOT_SETTLED, data=facts)


def event_second_payment(order: Order, facts: dict[str, Any], *, same_session: bool) -> OrderEvent:
    """A completed checkout for an order already paid: the same session again (a repeated
    event, nothing to do) or another session (paid twice, the extra payment needs a refund)."""
    if same_session:
        return _record(order, K.DUPLICATE_PAYMENT_EVENT, data=facts)
    return _record(
        order, K.SECOND_PAYMENT, message="Paid twice: refund the extra payment.", data=facts
    )


def event_refund_asked(order: Order, *, amount: int, actor: Any = None) -> OrderEvent:
    """A refund of ``amount`` minor units is about to be asked of the payment provider."""
    return _record(order, K.REFUND_ASKED, data={"amount": amount}, actor=actor)


def event_partial_refund(
    order: Order, *, refunded_total: int, paid: int, facts: dict[str, Any]
) -> OrderEvent:
    """The provider refunded part of the payment (``refunded_total`` of ``paid`` so far)."""
    return _record(
        order, K.PARTIAL_REFUND, message=f"Refunded {refunded_total} of {paid}.", data=facts
    )


def event_dispute_opened(
    order: Order, *, reason: str | None, dispute_id: str | None, amount: Any, event_id: str
) -> OrderEvent:
    """The buyer disputed the payment with their bank."""
    return _record(
        order,
        K.DISPUTE_OPENED,
        message=f"Dispute opened: {reason or 'no reason given'}.",
        data={"dispute": dispute_id, "amount": amount, "event": event_id},
    )


def event_commission_skipped(order: Order, *, reason: str) -> OrderEvent:
    """The delivered order earned no commissions; ``reason`` is the ledger's sentence why."""
    return _record(order, K.COMMISSION_SKIPPED, message=reason)


def event_review_recorded(order: Order, *, action: str, result: str, actor: Any) -> OrderEvent:
    """The owner acted on a held order from the review queue. ``action`` is the review
    action's value (``approve``, ``reject_refund``, ``block_email``, ``block_ip``); one the
    list does not know raises ``ValueError``."""
    kind = OrderEventKind(f"review_{action}")
    return _record(order, kind, message=f"{kind.label}: {result}", actor=actor)


def event_keys_resent(order: Order, *, actor: Any) -> OrderEvent:
    """Support asked for the delivery email to go to the buyer again (nobody saw the keys)."""
    return _record(
        order, K.KEYS_RESENT, message="Delivery email queued again to the buyer.", actor=actor
    )


def event_ticket_opened(order: Order, *, ticket_no: str, kind: str) -> OrderEvent:
    """The buyer reported a problem with the order (``orders.support.tickets``)."""
    return _record(
        order,
        K.TICKET_OPENED,
        message=f"Ticket {ticket_no} opened: {kind}.",
        data={"ticket": ticket_no, "kind": kind},
    )


def event_ticket_replied(order: Order, *, ticket_no: str, actor: Any) -> OrderEvent:
    """The shop answered a ticket; the reply went to the buyer through the outbox."""
    return _record(
        order,
        K.TICKET_REPLIED,
        message=f"Reply to ticket {ticket_no} sent to the buyer.",
        data={"ticket": ticket_no},
        actor=actor,
    )


def event_key_replaced(
    order: Order, *, slot: int, old_key_id: int, new_key_id: int, ticket_no: str, actor: Any
) -> OrderEvent:
    """A sold key was voided and a key from the pool sold into its slot (no key text here)."""
    return _record(
        order,
        K.KEY_REPLACED,
        message=f"Key {slot} voided and replaced from the pool"
        + (f" (ticket {ticket_no})." if ticket_no else "."),
        data={"slot": slot, "old_key": old_key_id, "new_key": new_key_id, "ticket": ticket_no},
        actor=actor,
    )


def event_message_failed(order: Order, *, purpose: str, channels: list[str]) -> OrderEvent:
    """The outbox gave up on the last channel of the buyer's chain: nobody told the buyer
    (the order page still shows the keys). The owner hears about it (``orders.notices``)."""
    tried = ", ".join(channels)
    notices_record(order_id=order.pk, notices=[(NoticeKind.DELIVERY_FAILED, f"{purpose}: {tried}")])
    return _record(
        order,
        K.MESSAGE_FAILED,
        message=f"The {purpose} message failed on every channel ({tried}).",
        data={"purpose": purpose, "channels": channels},
    )
