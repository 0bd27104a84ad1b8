"""Sending due outbox rows: claim and commit, send, record — three steps, two transactions.

1. **Claim** (one transaction): due rows (``pending``, or ``sending`` whose lease lapsed) are
   locked with ``FOR UPDATE SKIP LOCKED`` — so any number of dispatchers share the work and
   never wait on each other — marked ``sending`` until ``now + lease``, and an attempt row is
   written for each. An attempt a lapsed lease left ``sending`` becomes ``unknown``.
2. **Send**, outside any transaction (no network call while holding locks).
3. **Record** (one transaction): the attempt's outcome; the message ``sent``, due again after
   a backoff, or given up — and then its next channel's row written — or ``skipped``, no
   next channel either, when its renderer found it no longer wanted (``NoLongerWanted``).
   A database that fails here is retried for ``KAMI_OUTBOX_RECORD_RETRY_SECONDS``: a
   PostgreSQL restart between send and record must not turn into a second copy.

A crash between 1 and 3 is the only way a message can go out twice; ``orders.outbox`` spells
out what each channel promises then.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from orders.events import event_message_failed
from orders.models import Delivery, Order
from orders.notices.batching import notices_batch, notices_pass_due
from orders.notices.channels import NOTICE_CHANNELS
from orders.outbox.channels import CHANNELS, Channel
from orders.outbox.content import render
from orders.outbox.errors import NoLongerWanted, PermanentFailure
from orders.outbox.models import (
    OPEN_STATUSES,
    AttemptOutcome,
    MessageAttempt,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    OutboxMessage,
)
from orders.outbox.services import Draft, recipient_for
from shop.models import ShopSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The buyer's messages whose loss the owner must hear of: the keys, and a replaced key.
OWNER_HEARS_OF_FAILURE = frozenset({MessagePurpose.DELIVERY, MessagePurpose.KEY_REPLACED})

BACKOFF_CAP = timedelta(hours=1)
IN_DOUBT = (
    "The dispatcher stopped before it recorded the outcome (crash, kill, or the database "
    "lost for too long): sent again with the same idempotency key."
)


def backoff(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failure a message is tried again: 1×, 2×, 4×, … the
    base (``KAMI_OUTBOX_RETRY_SECONDS``), at most an hour."""
    base = timedelta(seconds=settings.KAMI_OUTBOX_RETRY_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def _lease() -> timedelta:
    return timedelta(seconds=settings.KAMI_OUTBOX_LEASE_SECONDS)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


@dataclass
class Claim:
    message: OutboxMessage
    attempt: MessageAttempt


@dataclass(frozen=True)
class Outcome:
    sent: bool
    provider_ref: str = ""
    error: str = ""
    permanent: bool = False
    skipped: bool = False


def messages_claim(*, limit: int, now: datetime | None = None) -> list[Claim]:
    """Step 1: take up to ``limit`` due messages for this dispatcher, and commit that."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status__in=OPEN_STATUSES, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        if not rows:
            return []
        in_doubt = [row.pk for row in rows if row.status == MessageStatus.SENDING]
        if in_doubt:
            MessageAttempt.objects.filter(
                message_id__in=in_doubt, outcome=AttemptOutcome.SENDING
            ).update(outcome=AttemptOutcome.UNKNOWN, error=IN_DOUBT, finished_at=now)
        for row in rows:
            row.attempts += 1
            row.status = MessageStatus.SENDING
            row.next_attempt_at = now + _lease()
        OutboxMessage.objects.bulk_update(rows, ["attempts", "status", "next_attempt_at"])
        worker = _worker_name()
        attempts = MessageAttempt.objects.bulk_create(
            [
                MessageAttempt(
                    message=row,
                    order_id=row.order_id,
                    number=row.attempts,
                    channel=row.channel,
                    worker=worker,
                    started_at=now,
                )
                for row in rows
            ]
        )
    return [Claim(row, attempt) for row, attempt in zip(rows, attempts, strict=True)]


def _failure(exc: BaseException) -> Outcome:
    if isinstance(exc, NoLongerWanted):
        return Outcome(sent=False, error=str(exc)[:2000], skipped=True)
    permanent = isinstance(exc, PermanentFailure)
    text = str(exc) if permanent else f"{type(exc).__name__}: {exc}"
    return Outcome(sent=False, error=text[:2000], permanent=permanent)


def _send(claim: Claim, channel: Channel) -> Outcome:
    """Step 2 for a channel that crosses the network."""
    try:
        content = render(claim.message)
        ref = channel.send(claim.message, content)
    except NoLongerWanted as exc:
        logger.info("message %s (%s) skipped: %s", claim.message.pk, claim.message.purpose, exc)
        return _failure(exc)
    except Exception as exc:
        logger.warning(
            "message %s (%s by %s) attempt %s failed: %s",
            claim.message.pk,
            claim.message.purpose,
            claim.message.channel,
            claim.message.attempts,
            type(exc).__name__,
        )
        return _failure(exc)
    return Outcome(sent=True, provider_ref=ref[:255])


def _record(claim: Claim, outcome: Outcome | None, *, channel: Channel) -> None:
    """Step 3. ``outcome`` None: an in-transaction channel, sent here, in this transaction."""
    message = claim.message
    with transaction.atomic():
        if outcome is None:
            try:
                with transaction.atomic():
                    outcome = Outcome(
                        sent=True, provider_ref=channel.send(message, render(message))
                    )
            except (OperationalError, InterfaceError):
                raise  # the database itself: retried as a whole by the caller
            except Exception as exc:
                outcome = _failure(exc)
        now = timezone.now()
        gives_up = not outcome.sent and (
            outcome.permanent or message.attempts >= settings.KAMI_OUTBOX_MAX_ATTEMPTS
        )
        MessageAttempt.objects.filter(pk=claim.attempt.pk).update(
            outcome=(
                AttemptOutcome.SENT
                if outcome.sent
                else AttemptOutcome.SKIPPED
                if outcome.skipped
                else AttemptOutcome.GAVE_UP
                if gives_up
                else AttemptOutcome.FAILED
            ),
            error=outcome.error,
            provider_ref=outcome.provider_ref,
            finished_at=now,
        )
        # Only the holder of the current claim moves the message on: a dispatcher whose lease
        # lapsed while it was sending records its attempt and nothing else.
        current = OutboxMessage.objects.filter(
            pk=message.pk, status=MessageStatus.SENDING, attempts=message.attempts
        )
        if outcome.sent:
            if current.update(
                status=MessageStatus.SENT,
                sent_at=now,
                last_error="",
                provider_ref=outcome.provider_ref,
            ):
                _after_sent(message, now=now)
        elif outcome.skipped:
            current.update(status=MessageStatus.SKIPPED, last_error=outcome.error)
        elif not gives_up:
            current.update(
                status=MessageStatus.PENDING,
                next_attempt_at=now + backoff(message.attempts),
                last_error=outcome.error,
            )
        elif current.update(status=MessageStatus.FAILED, last_error=outcome.error):
            _fall_back(message, error=outcome.error, now=now)


def _after_sent(message: OutboxMessage, *, now: datetime) -> None:
    """The delivery's own record of its email (shown in the admin since before the outbox)."""
    if message.purpose != MessagePurpose.DELIVERY or message.channel != MessageChannel.EMAIL:
        return
    if message.order_id is not None:
        Delivery.objects.filter(order_id=message.order_id, emailed_at__isnull=True).update(
            emailed_at=now
        )


def _fall_back(message: OutboxMessage, *, error: str, now: datetime) -> None:
    """This channel gave up: the next reachable channel of the chain gets its own row."""
    from orders.outbox.services import messages_enqueue

    order = Order.objects.filter(pk=message.order_id).first() if message.order_id else None
    chain = list(message.fallback)
    callback_url = ShopSettings.load().callback_url if MessageChannel.CALLBACK in chain else ""
    while chain and order is not None:
        channel = chain.pop(0)
        recipient = recipient_for(channel, order, callback_url=callback_url)
        if recipient:
            messages_enqueue(
                [
                    Draft(
                        purpose=message.purpose,
                        channel=channel,
                        recipient=recipient,
                        subject=order.order_no,
                        order_id=order.pk,
                        fallback=tuple(chain),
                        payload=message.payload,
                        generation=message.generation,
                    )
                ],
                now=now,
            )
            logger.info("message %s falls back from %s to %s", message.pk, message.channel, channel)
            return
    if order is not None and message.purpose in OWNER_HEARS_OF_FAILURE:
        tried = OutboxMessage.objects.filter(
            order_id=order.pk, purpose=message.purpose, generation=message.generation
        ).values_list("channel", flat=True)
        event_message_failed(order, purpose=message.purpose, channels=list(dict.fromkeys(tried)))
    logger.error(
        "message %s (%s%s) failed on every channel; last: %s",
        message.pk,
        message.purpose,
        f" for order {order.order_no}" if order is not None else "",
        error,
    )


def _with_database_retry(work: Callable[[], T]) -> T:
    """Run ``work`` (a transaction), again after a lost connection, for a while: the outcome
    of a message that already left must be recorded, not sent a second time."""
    deadline = time.monotonic() + settings.KAMI_OUTBOX_RECORD_RETRY_SECONDS
    pause = 0.2
    while True:
        try:
            return work()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() >= deadline:
                raise
            logger.warning("database unavailable while recording a message; retrying")
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


class _UnknownChannel(Channel):
    name = "unknown"


def message_send(claim: Claim) -> None:
    """Steps 2 and 3 for one claimed message."""
    channel = CHANNELS.get(claim.message.channel) or NOTICE_CHANNELS.get(claim.message.channel)
    outcome: Outcome | None
    if channel is None:
        channel = _UnknownChannel()
        outcome = Outcome(sent=False, error=f"no channel {claim.message.channel}", permanent=True)
    elif channel.in_transaction:
        outcome = None
    else:
        outcome = _send(claim, channel)
    found = channel
    _with_database_retry(lambda: _record(claim, outcome, channel=found))


def _notices_batch() -> None:
    if not notices_pass_due():
        return
    try:
        notices_batch()
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        # A notice that cannot be rendered must not hold up the buyers' messages.
        logger.exception("batching the owner's notices failed")


def messages_dispatch(*, batch: int = 20, limit: int = 500) -> int:
    """Claim and send due messages, batch after batch, until none are due or ``limit`` were
    handled; returns how many were. The owner's notices are batched first (``orders.notices``;
    at most once a second per process), so every dispatch — kicked after a commit, periodic,
    or the workers' sweep — moves them."""
    handled = 0
    while handled < limit:
        _notices_batch()  # again after each batch: a message given up on is a notice
        claims = messages_claim(limit=min(batch, limit - handled))
        if not claims:
            break
        for claim in claims:
            message_send(claim)
        handled += len(claims)
    return handled
