"""Writes for the follow-ups: scheduling at delivery, the due sweep, the buyer's first view,
unsubscribing and answering the survey."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from orders.followups.models import (
    TRANSACTIONAL,
    FollowUp,
    FollowUpPurpose,
    FollowUpState,
    ProductFollowUps,
    SurveyResponse,
    Unsubscribe,
)
from orders.followups.selectors import buyer_identity, is_unsubscribed, recommendations_for
from orders.followups.templates import choose_variant
from orders.models import Order, OrderStatus
from orders.outbox.models import MessageChannel, MessagePurpose, MessageStatus, OutboxMessage
from orders.outbox.services import Draft, messages_enqueue, messaging_plan, recipient_for

logger = logging.getLogger(__name__)

DELAYS = {
    FollowUpPurpose.HOW_TO: timedelta(0),
    FollowUpPurpose.KEY_GUIDE: timedelta(minutes=5),
    FollowUpPurpose.CHECK_IN: timedelta(days=3),
    FollowUpPurpose.SURVEY: timedelta(days=5),
    FollowUpPurpose.RECOMMENDATION: timedelta(days=7),
}


def followups_schedule(*, order: Order, now: datetime | None = None) -> None:
    """In the delivery transaction: every follow-up's row, due after its delay. One INSERT;
    a row already there (a replayed delivery) is left alone by the unique constraint."""
    now = now or order.delivered_at or timezone.now()
    FollowUp.objects.bulk_create(
        [
            FollowUp(order_id=order.pk, purpose=purpose, due_at=now + delay)
            for purpose, delay in DELAYS.items()
        ],
        ignore_conflicts=True,
    )


def order_viewed(*, order: Order, now: datetime | None = None) -> None:
    """The buyer opened the order page with its keys: one UPDATE, a no-op once recorded."""
    if order.delivered_at is None or order.viewed_at is not None:
        return
    now = now or timezone.now()
    Order.objects.filter(pk=order.pk, viewed_at__isnull=True, delivered_at__isnull=False).update(
        viewed_at=now
    )
    order.viewed_at = now


def _guide_chain(order: Order, chain: tuple[str, ...]) -> list[str]:
    """The key guide goes by the channel after the one that carried the delivery (email →
    SMS, …), then round to the start; never the site inbox or the owner's system, which the
    buyer sees only on the very page they have not opened, unless nothing else is left."""
    used = (
        OutboxMessage.objects.filter(
            order=order, purpose=MessagePurpose.DELIVERY, status=MessageStatus.SENT
        )
        .order_by("-created_at")
        .values_list("channel", flat=True)
        .first()
    )
    reachable = [c for c in chain if recipient_for(c, order, callback_url="")]
    if used in reachable:
        at = reachable.index(used)
        reachable = reachable[at + 1 :] + reachable[: at + 1]
    outside = [c for c in reachable if c not in (MessageChannel.INBOX, MessageChannel.CALLBACK)]
    return outside or [MessageChannel.INBOX]


def _draft(*, follow_up: FollowUp, order: Order, variant: str) -> Draft:
    plan = messaging_plan(order.product_id)
    if follow_up.purpose == FollowUpPurpose.KEY_GUIDE:
        chain = _guide_chain(order, plan.chain)
    else:
        chain = [c for c in plan.chain if c != MessageChannel.CALLBACK]
        chain = [c for c in chain if recipient_for(c, order, callback_url="")] or [
            MessageChannel.INBOX
        ]
    first, *rest = chain
    return Draft(
        purpose=follow_up.purpose,
        channel=first,
        recipient=recipient_for(first, order, callback_url=""),
        subject=order.order_no,
        order_id=order.pk,
        fallback=tuple(rest),
        payload={"variant": variant} if variant else {},
    )


def skip_reason(*, follow_up: FollowUp, order: Order, settings_row: ProductFollowUps | None) -> str:
    """Why this follow-up must not go out, or "" when it should."""
    purpose = follow_up.purpose
    if order.status != OrderStatus.DELIVERED or order.refunded_amount:
        return f"the order is {order.status}" + (" (refunded)" if order.refunded_amount else "")
    if purpose == FollowUpPurpose.KEY_GUIDE:
        return "the buyer opened the order page" if order.viewed_at is not None else ""
    if purpose not in TRANSACTIONAL and is_unsubscribed(buyer_identity(order)):
        return "the buyer unsubscribed"
    if settings_row is None or not settings_row.sends(purpose):
        return "off for this product"
    if purpose == FollowUpPurpose.RECOMMENDATION and not recommendations_for(
        product_id=order.product_id
    ):
        return "nothing to recommend yet"
    return ""


def followups_send_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Decide every due follow-up: skip it or hand it to the outbox, in the transaction that
    marks it decided (``SKIP LOCKED``: two sweeps never take the same row). Returns how
    many were queued."""
    now = now or timezone.now()
    queued = 0
    with transaction.atomic():
        rows = list(
            FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("order")
            .filter(state=FollowUpState.SCHEDULED, due_at__lte=now)
            .order_by("due_at", "pk")[:limit]
        )
        settings_by_product = {
            row.product_id: row
            for row in ProductFollowUps.objects.filter(
                product_id__in={r.order.product_id for r in rows}
            )
        }
        for follow_up in rows:
            order = follow_up.order
            reason = skip_reason(
                follow_up=follow_up,
                order=order,
                settings_row=settings_by_product.get(order.product_id),
            )
            if reason:
                follow_up.state, follow_up.reason = FollowUpState.SKIPPED, reason
            else:
                variant = choose_variant(
                    order_no=order.order_no, purpose=follow_up.purpose, product_id=order.product_id
                )
                messages_enqueue([_draft(follow_up=follow_up, order=order, variant=variant)])
                follow_up.state, follow_up.variant = FollowUpState.QUEUED, variant
                queued += 1
            follow_up.decided_at = now
        FollowUp.objects.bulk_update(rows, ["state", "reason", "variant", "decided_at"])
    return queued


def buyer_unsubscribe(*, identity: str, source: str) -> bool:
    """No more follow-ups to ``identity``; True if this is new. Any that are scheduled are
    skipped when due."""
    _, created = Unsubscribe.objects.get_or_create(identity=identity, defaults={"source": source})
    if created:
        logger.info("a buyer unsubscribed from follow-ups (%s)", source)
    return created


def survey_answer(*, order: Order, score: int, comment: str) -> SurveyResponse:
    """Store the buyer's answer; a second one replaces the first (one row per order)."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1 to 5")
    response, _ = SurveyResponse.objects.update_or_create(
        order=order,
        defaults={"product_id": order.product_id, "score": score, "comment": comment[:2000]},
    )
    return response
