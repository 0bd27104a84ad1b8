"""Processing stored payment events, one transaction per event.

The event row is locked first (lock order: payment event → order → product → keys → ledger),
the handler does its work, and ``processed_at`` is set in the same transaction: if anything
fails, nothing is kept, the error is recorded, and the task (or the sweeper) tries again.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from commissions.services import commissions_clawback_for_order
from orders import live
from orders.delivery import order_deliver
from orders.events import (
    OrderEventKind,
    event_dispute_opened,
    event_partial_refund,
    event_payment_not_settled,
    event_second_payment,
)
from orders.locks import lock_order_by_no, lock_order_by_payment_intent, lock_payment_event
from orders.models import Order, OrderStatus, PaymentEvent
from orders.risk import risk_control
from orders.transitions import PAID_STATUSES, Step, order_transition, order_transition_path

logger = logging.getLogger(__name__)


class OrderNotYetKnown(Exception):
    """A refund or dispute names a payment no processed checkout has recorded yet (Stripe does
    not order its events). Failing keeps the event unprocessed, so it is retried."""


RETRY_UNMATCHED_FOR = timedelta(days=1)


WEBHOOK_DELAY_TRUSTED = timedelta(seconds=5)


def payment_time(event: PaymentEvent) -> datetime:
    """When the payment happened. Normally when its event reached us; but when the event is
    clearly late (an outage, Stripe's retries) its signed ``created`` time, so a delayed webhook
    does not cost the buyer their place in line. (``created`` has whole-second precision, too
    coarse to order events arriving on time.)"""
    created = event.payload.get("created")
    if isinstance(created, int):
        created_at = datetime.fromtimestamp(created, tz=UTC)
        if event.received_at - created_at > WEBHOOK_DELAY_TRUSTED:
            return created_at
    return event.received_at


def _unmatched(event: PaymentEvent, what: str) -> None:
    if timezone.now() - event.received_at < RETRY_UNMATCHED_FOR:
        raise OrderNotYetKnown(f"{what} {event.event_id} matches no order yet")
    logger.warning("%s %s matched no order within a day; giving up", what, event.event_id)


def _order_no_of_session(session: dict[str, Any]) -> str:
    metadata = session.get("metadata") or {}
    return str(metadata.get("order_no") or session.get("client_reference_id") or "")


def handle_checkout_completed(event: PaymentEvent) -> None:
    session = event.payload["data"]["object"]
    order = lock_order_by_no(_order_no_of_session(session))
    if order is None:
        logger.warning("payment event %s names no known order", event.event_id)
        return
    event.order = order
    facts = {
        "session": session.get("id"),
        "amount_total": session.get("amount_total"),
        "currency": session.get("currency"),
        "payment_intent": session.get("payment_intent"),
        "event": event.event_id,
    }
    if session.get("payment_status") != "paid":
        event_payment_not_settled(order, facts)
        return
    if order.status in PAID_STATUSES:
        # A second completed session or event for an order already paid: never deliver twice.
        same_session = session.get("id") == order.checkout_session_id
        event_second_payment(order, facts, same_session=same_session)
        return
    paid_amount = session.get("amount_total")
    paid_currency = str(session.get("currency") or "").upper()
    paid_at = payment_time(event)
    # Paid inside its hold (even if the sweeper expired it while the event was on its way):
    # it keeps the place in line its checkout took. Otherwise — late, or an order that never
    # held keys (checkout beyond the product's hold share: first to pay wins) — it queues from
    # its payment.
    in_time = (
        order.holds_keys
        and order.status in (OrderStatus.PENDING, OrderStatus.EXPIRED)
        and paid_at <= order.hold_expires_at
    )
    paid_step = Step(OrderStatus.PAID, kind=OrderEventKind.PAID, data=facts)
    paid_fields = {
        "paid_at": paid_at,
        "queued_at": order.created_at if in_time else paid_at,
        "paid_amount": paid_amount if isinstance(paid_amount, int) else None,
        "paid_currency": paid_currency[:3],
        "payment_intent": str(session.get("payment_intent") or "")[:255],
        "checkout_session_id": str(session.get("id") or "")[:255],
    }
    if paid_amount != order.amount or paid_currency != order.currency:
        mismatch = Step(
            OrderStatus.ON_HOLD,
            kind=OrderEventKind.PAYMENT_MISMATCH,
            message=(
                f"Paid {paid_amount} {paid_currency}, expected {order.amount} {order.currency}: "
                "review before delivering."
            ),
            data=facts,
        )
        order_transition_path(order=order, steps=[paid_step, mismatch], **paid_fields)
        return
    order.paid_at = paid_at  # the review below asks whether the buyer was blocked by then
    review_reason = risk_control().review_reason_for_payment(order=order)
    if review_reason:
        hold = Step(
            OrderStatus.ON_HOLD, kind=OrderEventKind.RISK_HOLD, message=review_reason, data=facts
        )
        order_transition_path(order=order, steps=[paid_step, hold], **paid_fields)
        return
    order_deliver(order=order, payment_event=event, pay_step=paid_step, pay_fields=paid_fields)


def handle_checkout_expired(event: PaymentEvent) -> None:
    session = event.payload["data"]["object"]
    order = lock_order_by_no(_order_no_of_session(session))
    if order is None:
        return
    event.order = order
    # An order knows its session once checkout started with Stripe; an expired *other* session
    # (an abandoned earlier attempt) must not expire it.
    other_session = order.checkout_session_id and session.get("id") != order.checkout_session_id
    if order.status == OrderStatus.PENDING and not other_session:
        order_transition(
            order=order,
            to_status=OrderStatus.EXPIRED,
            kind=OrderEventKind.EXPIRED,
            message="The checkout session expired unpaid.",
        )


def _lock_order_of_charge(event: PaymentEvent, what: str) -> Order | None:
    """The locked order a charge or dispute event is about, matched by its payment intent."""
    obj = event.payload["data"]["object"]
    order = lock_order_by_payment_intent(str(obj.get("payment_intent") or ""))
    if order is None:
        _unmatched(event, what)
        return None
    event.order = order
    return order


def handle_charge_refunded(event: PaymentEvent) -> None:
    charge = event.payload["data"]["object"]
    order = _lock_order_of_charge(event, "refund")
    if order is None:
        return
    refunded_total = int(charge.get("amount_refunded") or 0)
    newly_refunded = refunded_total - order.refunded_amount
    if newly_refunded <= 0:
        return  # an older or repeated refund event: nothing new
    Order.objects.filter(pk=order.pk).update(refunded_amount=refunded_total)
    order.refunded_amount = refunded_total
    paid = order.paid_amount or order.amount
    facts = {"charge": charge.get("id"), "amount_refunded": refunded_total, "event": event.event_id}
    if refunded_total >= paid and order.status != OrderStatus.REFUNDED:
        order_transition(
            order=order,
            to_status=OrderStatus.REFUNDED,
            kind=OrderEventKind.REFUNDED,
            message="Refunded in full. Delivered keys stay on the buyer's record.",
            data=facts,
        )
    else:
        event_partial_refund(order, refunded_total=refunded_total, paid=paid, facts=facts)
    commissions_clawback_for_order(order=order, amount=newly_refunded)


def handle_dispute_created(event: PaymentEvent) -> None:
    dispute = event.payload["data"]["object"]
    order = _lock_order_of_charge(event, "dispute")
    if order is None:
        return
    if order.disputed_at is None:
        now = timezone.now()
        Order.objects.filter(pk=order.pk).update(disputed_at=now)
        order.disputed_at = now
    event_dispute_opened(
        order,
        reason=dispute.get("reason"),
        dispute_id=dispute.get("id"),
        amount=dispute.get("amount"),
        event_id=event.event_id,
    )
    amount = dispute.get("amount")
    if isinstance(amount, int) and amount > 0:
        commissions_clawback_for_order(order=order, amount=min(amount, order.amount))


HANDLERS: dict[str, Callable[[PaymentEvent], None]] = {
    "checkout.session.completed": handle_checkout_completed,
    "checkout.session.async_payment_succeeded": handle_checkout_completed,
    "checkout.session.expired": handle_checkout_expired,
    "charge.refunded": handle_charge_refunded,
    "charge.dispute.created": handle_dispute_created,
}


def _mark_processed(event: PaymentEvent) -> None:
    """Processed, in the transaction that did the work (plain SQL: it is in every delivery)."""
    event.processed_at = timezone.now()
    event.attempts += 1
    event.last_error = ""
    processed_at = PaymentEvent._meta.get_field("processed_at")
    table = connection.ops.quote_name(PaymentEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET processed_at = %s, attempts = %s, last_error = '', "  # noqa: S608
            "order_id = %s WHERE id = %s",
            [
                processed_at.get_db_prep_save(event.processed_at, connection),
                event.attempts,
                event.order_id,
                event.pk,
            ],
        )


def failure_text(exc: BaseException) -> str:
    """The whole traceback, so the owner (and whoever they ask) sees where it failed."""
    return "".join(traceback.format_exception(exc)).strip()


def payment_event_process(*, event_id: int, skip_locked: bool = False) -> bool:
    """Process one stored event exactly once. True when it was processed by this call.
    ``skip_locked`` (the sweep): leave an event another transaction is processing right now."""
    try:
        with transaction.atomic():
            event = lock_payment_event(event_id, skip_locked=skip_locked)
            if event is None or event.processed_at is not None:
                return False
            handler = HANDLERS.get(event.type)
            if handler is not None:
                handler(event)
            _mark_processed(event)
            return True
    except Exception as exc:
        # The work rolled back; remember why, so the owner and the sweeper can see it. Only
        # on an event still unprocessed: whatever fails after a commit (nothing should: what
        # runs then is queued robustly) must never mark a processed event failed.
        PaymentEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
            attempts=F("attempts") + 1, last_error=failure_text(exc)
        )
        live.payment_failed(event_id=event_id, error=exc)  # the owner's feed shows it
        raise
