"""Reads for the follow-ups: recommendations, survey figures, A/B counts, the channel that
carried a delivery, and whether a buyer unsubscribed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, QuerySet
from django.urls import reverse

from core.identity import email_identity
from orders.followups.models import FollowUp, FollowUpState, SurveyResponse, Unsubscribe
from orders.models import Order, OrderStatus
from orders.outbox.models import MessagePurpose, MessageStatus, OutboxMessage
from orders.support.models import Ticket, TicketKind

BOUGHT = (OrderStatus.DELIVERED,)


def buyer_identity(order: Order) -> str:
    return order.buyer_identity or email_identity(order.email)


def is_unsubscribed(identity: str) -> bool:
    return Unsubscribe.objects.filter(identity=identity).exists()


def recommendations_for(*, product_id: int, limit: int = 3) -> list[dict[str, Any]]:
    """What other buyers of the product bought, most buyers first: one aggregate query (the
    buyers of the product as a subquery, their other delivered orders grouped by product)."""
    buyers = Order.objects.filter(product_id=product_id, status__in=BOUGHT).values("buyer_identity")
    rows = (
        Order.objects.filter(status__in=BOUGHT, buyer_identity__in=buyers, product__on_sale=True)
        .exclude(product_id=product_id)
        .exclude(buyer_identity="")
        .values("product_id", "product__name", "product__slug")
        .annotate(buyers=Count("buyer_identity", distinct=True))
        .order_by("-buyers", "product__name")[:limit]
    )
    return [
        {
            "name": row["product__name"],
            "url": f"{settings.SITE_URL}{reverse('product-page', args=[row['product__slug']])}",
            "buyers": row["buyers"],
        }
        for row in rows
    ]


def survey_scores_by_product(
    *, start: datetime | None = None, end: datetime | None = None
) -> QuerySet:
    """Average score and number of answers per product, for the reports (analytics): the
    answers given in [start, end) when a period is named."""
    answers = SurveyResponse.objects.all()
    if start is not None:
        answers = answers.filter(created_at__gte=start)
    if end is not None:
        answers = answers.filter(created_at__lt=end)
    return (
        answers.values("product_id", "product__name")
        .annotate(average=Avg("score"), answers=Count("id"))
        .order_by("product__name")
    )


def survey_score_for(product_id: int) -> dict[str, Any]:
    return SurveyResponse.objects.filter(product_id=product_id).aggregate(
        average=Avg("score"), answers=Count("id")
    )


@dataclass(frozen=True)
class DeliveryNotice:
    """How the buyer heard of the delivery: the channel, where to, and whether it has left."""

    channel: str
    recipient: str
    sent: bool
    failed: bool


def delivery_notice(order: Order) -> DeliveryNotice | None:
    """The latest delivery message (the last channel of the chain tried so far)."""
    message = (
        OutboxMessage.objects.filter(order=order, purpose=MessagePurpose.DELIVERY)
        .order_by("-created_at", "-id")
        .only("channel", "recipient", "status")
        .first()
    )
    if message is None:
        return None
    return DeliveryNotice(
        channel=message.channel,
        recipient=message.recipient,
        sent=message.status == MessageStatus.SENT,
        failed=message.status == MessageStatus.FAILED,
    )


def mask_recipient(channel: str, recipient: str) -> str:
    """``j•••@example.com``, ``•••67``: enough for the buyer to recognise, not to harvest."""
    if channel == "email":
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}•••@{domain}"
    if channel == "sms":
        return f"•••{recipient[-2:]}"
    return ""


# --- A/B: "didn't receive" tickets per variant ---------------------------------------------


def didnt_receive_orders() -> QuerySet:
    """The ids of orders whose buyer reported "I didn't receive my key" (a ``key_missing``
    ticket): what an A/B variant of the key guide is judged by."""
    return Ticket.objects.filter(kind=TicketKind.KEY_MISSING).values("order_id")


def variant_counts(*, purpose: str) -> list[dict[str, Any]]:
    """Per variant of ``purpose``: orders that got it, and of those, "didn't receive"
    tickets."""
    sent = FollowUp.objects.filter(purpose=purpose, state=FollowUpState.QUEUED).exclude(variant="")
    tickets = didnt_receive_orders()
    rows = []
    for variant in ("a", "b"):
        orders = sent.filter(variant=variant)
        rows.append(
            {
                "variant": variant,
                "orders": orders.count(),
                "didnt_receive": orders.filter(order_id__in=tickets).count(),
            }
        )
    return rows
