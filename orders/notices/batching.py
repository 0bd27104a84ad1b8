"""Batching the owner's notices: pending events into each destination's open batch, and due
batches into one outbox message each.

One pass at a time (a transaction-scoped advisory lock; a pass that finds it taken returns at
once: the one holding it does the work). In one transaction a pass

1. moves every committed ``PendingNotice`` into the open batch of each enabled destination
   opted in to its kind — opening one, due ``batch_seconds`` after its first event, if there
   is none — and deletes the notice; a notice nobody wants is just deleted;
2. closes every batch that is due: renders the one message that lists its events and writes
   it to the outbox (``orders.outbox``), which sends it, retries it and records each attempt.

Exactly once by constraint, not only by the lock: an event is an item of a destination's
batch at most once (unique destination + notice), a destination has at most one open batch,
and a batch's message has the batch in its idempotency key. Passes run in every outbox
dispatch and in the sweeps (``orders.tasks``), so a broker outage delays a notification by
the sweep interval and loses nothing — at most once per ``KAMI_NOTICES_PASS_SECONDS`` in a
process: under load a dispatch follows every sale, and a pass per sale would cost the notify
worker a transaction each for notices that wait for a window of seconds anyway.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders.notices.content import batch_content, test_content
from orders.notices.models import (
    NoticeBatch,
    NoticeItem,
    NotifierKind,
    OwnerNotifier,
    PendingNotice,
)
from orders.outbox.models import MessagePurpose
from orders.outbox.services import Draft, messages_enqueue

LOCK_KEY = int.from_bytes(hashlib.sha256(b"kami:owner-notices").digest()[:8], "big", signed=True)


def _pass_lock() -> bool:
    """This transaction's right to batch; False if another pass holds it (PostgreSQL). SQLite
    serialises writing transactions by itself."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _collect(*, now: datetime, limit: int) -> int:
    pending = list(PendingNotice.objects.order_by("id")[:limit])
    if not pending:
        return 0
    for notifier in OwnerNotifier.objects.filter(enabled=True):
        mine = [notice for notice in pending if notifier.wants(notice.kind)]
        if not mine:
            continue
        batch = NoticeBatch.objects.filter(
            notifier=notifier, status=NoticeBatch.Status.OPEN
        ).first()
        if batch is None:
            first = min(notice.created_at for notice in mine)
            batch = NoticeBatch.objects.create(
                notifier=notifier,
                opened_at=now,
                due_at=first + timedelta(seconds=notifier.batch_seconds),
            )
        NoticeItem.objects.bulk_create(
            [
                NoticeItem(
                    batch=batch,
                    notifier=notifier,
                    notice_id=notice.pk,
                    kind=notice.kind,
                    order_id=notice.order_id,
                    detail=notice.detail,
                    occurred_at=notice.created_at,
                )
                for notice in mine
            ],
            ignore_conflicts=True,
        )
    PendingNotice.objects.filter(pk__in=[notice.pk for notice in pending]).delete()
    return len(pending)


def _close_due(*, now: datetime) -> int:
    due = list(
        NoticeBatch.objects.select_related("notifier").filter(
            status=NoticeBatch.Status.OPEN, due_at__lte=now
        )
    )
    written = 0
    for batch in due:
        notifier = batch.notifier
        key = ""
        if notifier.enabled:
            key = _notice_enqueue(
                notifier,
                subject=f"notice-batch-{batch.pk}",
                payload={**batch_content(batch), "batch_id": batch.pk},
                now=now,
            )
            written += 1
        NoticeBatch.objects.filter(pk=batch.pk).update(
            status=NoticeBatch.Status.CLOSED, closed_at=now, message_key=key
        )
    return written


def _notice_enqueue(
    notifier: OwnerNotifier, *, subject: str, payload: dict[str, Any], now: datetime
) -> str:
    """One message to ``notifier`` on its channel, in the current transaction, remembered as
    its latest (whose state the admin shows). ``subject`` names it in its idempotency key."""
    key = messages_enqueue(
        [
            Draft(
                purpose=MessagePurpose.OWNER_ALERT,
                channel=notifier.kind,
                recipient=notifier_recipient(notifier),
                subject=subject,
                payload={**payload, "notifier_id": notifier.pk},
            )
        ],
        now=now,
    )[0]
    OwnerNotifier.objects.filter(pk=notifier.pk).update(latest_message_key=key)
    return key


def notifier_recipient(notifier: OwnerNotifier) -> str:
    """What the outbox row says it goes to: the address for email; for the others the
    destination's name — their URLs and tokens are credentials, read when it is sent."""
    if notifier.kind == NotifierKind.EMAIL:
        return notifier.target
    return f"{notifier.get_kind_display()}: {notifier.name}"


_last_pass = 0.0
_last_pass_lock = threading.Lock()


def notices_pass_due() -> bool:
    """Whether this process may run a pass now (and, if so, that it is taking it)."""
    global _last_pass
    interval = settings.KAMI_NOTICES_PASS_SECONDS
    with _last_pass_lock:
        moment = time.monotonic()
        if interval and moment - _last_pass < interval:
            return False
        _last_pass = moment
        return True


def notices_batch(*, now: datetime | None = None, limit: int = 5000) -> int:
    """One pass (see the module's docstring); returns how many messages it wrote."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _pass_lock():
            return 0
        _collect(now=now, limit=limit)
        return _close_due(now=now)


def notifier_test(*, notifier: OwnerNotifier) -> str:
    """The owner's "send a test message": one message now, outside any batch."""
    now = timezone.now()
    return _notice_enqueue(
        notifier,
        subject=f"notice-test-{notifier.pk}-{int(now.timestamp() * 1000)}",
        payload=test_content(notifier),
        now=now,
    )
