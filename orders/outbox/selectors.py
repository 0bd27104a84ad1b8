"""Reads of the outbox for pages and the API: the buyer's inbox, and what really happened to a
message (the alerts, the weekly summary and the owner's notifications show it)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from orders.models import Order
from orders.outbox.models import InboxMessage, MessageStatus, OutboxMessage


def inbox_for_order(order: Order) -> list[dict[str, Any]]:
    """The order's site-inbox messages, oldest first. Callers check access first."""
    entries = InboxMessage.objects.filter(order=order).order_by("created_at", "pk")
    return [
        {"subject": e.subject, "body": e.body, "created_at": e.created_at}
        for e in entries.only("subject", "body", "created_at")
    ]


def message_state(
    key: str, *, noun: str = "", sent: str = "Sent", waiting: str = "Queued"
) -> str | None:
    """What really happened to the outbox message ``key``, in words read from its row (sent
    when, failing with which error, given up), or None if there is no such message. ``noun``
    names the channel in the words ("Email failed: …"), ``sent`` the verb ("Emailed at …")."""
    message = OutboxMessage.objects.filter(idempotency_key=key).first() if key else None
    if message is None:
        return None
    if message.status == MessageStatus.SENT and message.sent_at:
        return f"{sent} at {timezone.localtime(message.sent_at):%Y-%m-%d %H:%M}"
    lead = f"{noun} " if noun else ""
    if message.status == MessageStatus.FAILED:
        words = f"{lead}failed: {message.last_error}"
    elif message.attempts and message.last_error:
        words = f"{lead}not sent yet ({message.attempts} attempts): {message.last_error}"
    else:
        return waiting
    return (words[:1].upper() + words[1:])[:300]
