"""Shared by the owner-notification tests: a paid order the real way (signed webhook stored
and processed), destinations, and time travel for batches and retries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from orders.models import NoticeBatch, Order, OutboxMessage, OwnerNotifier
from orders.outbox.models import MessageStatus
from orders.payments.inbox import payment_event_receive
from orders.payments.processing import payment_event_process
from orders.payments.stripe_events import encode, sign_payload
from shop.models import ShopSettings
from tests.stripe_helpers import completed_event

ALL_EVENTS = ["new_order", "delivery_failed", "backorder", "hold"]


@pytest.fixture(autouse=True)
def _shop(db):
    ShopSettings.objects.update_or_create(
        pk=1, defaults={"shop_name": "Kami Test", "max_unpaid_per_network": 1000}
    )


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    """The delivery transaction of a signed payment, without what it queues after commit:
    each test runs the outbox itself (or the sweep), as a worker would."""

    def _pay(order: Order, **session_kwargs) -> Order:
        payload = encode(completed_event(order, **session_kwargs))
        with django_capture_on_commit_callbacks(execute=False):
            event, _ = payment_event_receive(
                payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            )
            payment_event_process(event_id=event.pk)
        order.refresh_from_db()
        return order

    return _pay


def notifier(kind: str = "email", target: str = "owner@example.com", **fields) -> OwnerNotifier:
    fields.setdefault("events", ALL_EVENTS)
    fields.setdefault("name", f"{kind} destination")
    fields.setdefault("batch_seconds", 60)
    found = OwnerNotifier(kind=kind, target=target, **fields)
    found.full_clean()
    found.save()
    return found


def windows_close() -> None:
    """Time travel: every open batch is due now (instead of sleeping through its window)."""
    NoticeBatch.objects.filter(status=NoticeBatch.Status.OPEN).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )


def retries_due() -> None:
    OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def owner_messages(**filters):
    return OutboxMessage.objects.filter(purpose="owner_alert", **filters).order_by("id")
