"""Writing messages into the outbox: in the caller's transaction, one ``INSERT`` for all.

``messages_enqueue`` is the only writer of new rows. Its ``INSERT … ON CONFLICT DO NOTHING``
meets the unique idempotency key, so enqueueing the same message twice (a retried task, a
resend clicked twice) leaves one row. After the commit a dispatch is kicked; if the broker is
down the sweep sends the rows instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from core.after_commit import enqueue_after_commit
from orders.models import Order
from orders.outbox.models import MessageChannel, MessagePurpose, MessageStatus, OutboxMessage
from shop.models import DEFAULT_MESSAGE_CHANNELS, Product, ShopSettings, parse_message_channels


@dataclass(frozen=True)
class Draft:
    """A message to write. ``subject`` names what it is about in its idempotency key (the
    order number, an alert and its moment): never a secret."""

    purpose: str
    channel: str
    recipient: str
    subject: str
    order_id: int | None = None
    fallback: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    generation: int = 0

    @property
    def idempotency_key(self) -> str:
        key = f"{self.purpose}:{self.subject}:{self.channel}"
        return f"{key}:resend-{self.generation}" if self.generation else key


@dataclass(frozen=True)
class MessagingPlan:
    """The owner's settings for one product's messages, read in one query."""

    chain: tuple[str, ...]
    callback_url: str


def messaging_plan(product_id: int) -> MessagingPlan:
    """The product's fallback chain (else the shop's) and the owner's callback URL: one
    primary-key ``SELECT`` in the delivery transaction, plain SQL (it runs in every sale)."""
    product = connection.ops.quote_name(Product._meta.db_table)
    shop = connection.ops.quote_name(ShopSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.message_channels, s.message_channels, s.callback_url "  # noqa: S608
            f"FROM {product} p LEFT JOIN {shop} s ON s.id = 1 WHERE p.id = %s",
            [product_id],
        )
        row = cursor.fetchone()
    product_chain, shop_chain, callback_url = row or ("", None, None)
    chain = parse_message_channels(
        product_chain or (shop_chain if shop_chain is not None else DEFAULT_MESSAGE_CHANNELS)
    )
    return MessagingPlan(chain=tuple(chain), callback_url=callback_url or "")


def recipient_for(channel: str, order: Order, *, callback_url: str) -> str:
    """Where ``channel`` reaches this order's buyer, or "" when it cannot."""
    if channel == MessageChannel.EMAIL:
        return order.email
    if channel == MessageChannel.SMS:
        return order.phone if settings.SMS_BACKEND else ""
    if channel == MessageChannel.INBOX:
        return order.order_no
    if channel == MessageChannel.CALLBACK:
        return callback_url
    return ""


def buyer_draft(
    *, order: Order, chain: Sequence[str], callback_url: str, purpose: str, generation: int = 0
) -> Draft:
    """The message for the first channel of ``chain`` that can reach the buyer; the rest of
    the reachable chain is its fallback. The site inbox when nothing else can."""
    reachable = [c for c in chain if recipient_for(c, order, callback_url=callback_url)]
    if not reachable:
        reachable = [MessageChannel.INBOX]
    first, *rest = reachable
    return Draft(
        purpose=purpose,
        channel=first,
        recipient=recipient_for(first, order, callback_url=callback_url),
        subject=order.order_no,
        order_id=order.pk,
        fallback=tuple(rest),
        generation=generation,
    )


def messages_enqueue(drafts: Iterable[Draft], *, now: datetime | None = None) -> list[str]:
    """Write ``drafts`` in the current transaction (one INSERT; existing keys are left
    alone) and kick a dispatch after the commit. Returns the idempotency keys."""
    now = now or timezone.now()
    rows = [
        OutboxMessage(
            purpose=d.purpose,
            order_id=d.order_id,
            generation=d.generation,
            channel=d.channel,
            fallback=list(d.fallback),
            recipient=d.recipient[:500],
            payload=d.payload,
            idempotency_key=d.idempotency_key,
            status=MessageStatus.PENDING,
            next_attempt_at=now,
        )
        for d in drafts
    ]
    if not rows:
        return []
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    # Lazy on purpose: orders.tasks imports the services that call this module.
    from orders.tasks import dispatch_messages

    enqueue_after_commit(dispatch_messages)
    return [row.idempotency_key for row in rows]


def delivery_messages_enqueue(*, order: Order) -> list[str]:
    """In the delivery transaction: the buyer's message on the first channel of the
    product's chain, and the owner's callback if the shop has one. Two statements: the plan
    and one multi-row INSERT."""
    plan = messaging_plan(order.product_id)
    drafts = [
        buyer_draft(
            order=order,
            chain=plan.chain,
            callback_url=plan.callback_url,
            purpose=MessagePurpose.DELIVERY,
        )
    ]
    if plan.callback_url:
        drafts.append(
            Draft(
                purpose=MessagePurpose.ORDER_CALLBACK,
                channel=MessageChannel.CALLBACK,
                recipient=plan.callback_url,
                subject=order.order_no,
                order_id=order.pk,
            )
        )
    return messages_enqueue(drafts)


def delivery_resend(*, order: Order) -> str | None:
    """The owner's resend: the delivery message again, as a new generation (its own key and
    Message-ID, so mail clients do not fold it into the first), down the chain as it is set
    now. None if the order has no keys to send."""
    if order.delivered_at is None:
        return None
    latest = OutboxMessage.objects.filter(order=order, purpose=MessagePurpose.DELIVERY).aggregate(
        latest=Max("generation")
    )["latest"]
    plan = messaging_plan(order.product_id)
    draft = buyer_draft(
        order=order,
        chain=plan.chain,
        callback_url=plan.callback_url,
        purpose=MessagePurpose.DELIVERY,
        generation=0 if latest is None else latest + 1,
    )
    return messages_enqueue([draft])[0]


def _owner_email_enqueue(
    *, purpose: str, subject_key: str, owner_email: str, payload: dict[str, Any]
) -> str:
    """An email to the owner, written whole (its text, and HTML if any), in the caller's
    transaction; ``subject_key`` names it in its idempotency key."""
    draft = Draft(
        purpose=purpose,
        channel=MessageChannel.EMAIL,
        recipient=owner_email,
        subject=subject_key,
        payload={**payload, "subject": payload["subject"][:250]},
    )
    return messages_enqueue([draft])[0]


def owner_alert_enqueue(*, key: str, owner_email: str, subject: str, text: str) -> str:
    """An email to the owner, in the caller's transaction (the alert's). ``key`` names this
    one sending of the alert."""
    return _owner_email_enqueue(
        purpose=MessagePurpose.OWNER_ALERT,
        subject_key=key,
        owner_email=owner_email,
        payload={"subject": subject, "text": text},
    )


def weekly_summary_enqueue(
    *, week_start: date, owner_email: str, subject: str, text: str, html: str
) -> str:
    """The owner's weekly summary, in the caller's transaction (the week's claim). One key per
    week (``weekly_summary:<week_start>:email``): a second run, or a second worker, cannot
    queue another."""
    return _owner_email_enqueue(
        purpose=MessagePurpose.WEEKLY_SUMMARY,
        subject_key=week_start.isoformat(),
        owner_email=owner_email,
        payload={"subject": subject, "text": text, "html": html},
    )


def message_retry_now(*, message_ids: list[int]) -> int:
    """The owner's "retry now" for messages waiting or given up: due at once, one more try
    each (a failure then moves on down the chain as before)."""
    count = OutboxMessage.objects.filter(
        pk__in=message_ids, status__in=[MessageStatus.PENDING, MessageStatus.FAILED]
    ).update(status=MessageStatus.PENDING, next_attempt_at=timezone.now())
    if count:
        from orders.tasks import dispatch_messages

        enqueue_after_commit(dispatch_messages)
    return count
