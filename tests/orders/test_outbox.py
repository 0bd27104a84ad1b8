"""The outbox (issue "Every channel, pushed live, and nothing lost"): a message is a row of the
transaction that causes it, sent by a dispatcher that records every attempt, retries with
backoff and falls back along the product's chain; email carries a Message-ID derived from the
idempotency key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import (
    AttemptOutcome,
    Delivery,
    MessageAttempt,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    Order,
    OrderStatus,
    OutboxMessage,
)
from orders.outbox.channels import message_id
from orders.outbox.dispatch import backoff, message_send, messages_claim, messages_dispatch
from orders.outbox.services import delivery_messages_enqueue
from orders.payments.inbox import payment_event_receive
from orders.payments.processing import payment_event_process
from orders.payments.stripe_events import encode, sign_payload
from shop.models import MESSAGE_CHANNELS, ShopSettings
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    """Store and process a signed payment for ``order`` — the delivery transaction — without
    running what it queues after commit: the tests dispatch the outbox themselves."""

    def _pay(order: Order) -> Order:
        payload = encode(completed_event(order))
        with django_capture_on_commit_callbacks(execute=False):
            event, _ = payment_event_receive(
                payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            )
            assert payment_event_process(event_id=event.pk)
        order.refresh_from_db()
        return order

    return _pay


def due_now() -> None:
    """Time travel: every waiting message is due (instead of sleeping through its backoff)."""
    OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def dispatch() -> int:
    return messages_dispatch()


def test_the_delivery_transaction_writes_the_message_and_no_key_in_it(pay):
    product = stock_product(2, slug="p")
    order = OrderFactory(product=product, quantity=2)
    with CaptureQueriesContext(connection) as queries:
        pay(order)
    assert order.status == OrderStatus.DELIVERED
    message = OutboxMessage.objects.get()
    assert (message.purpose, message.channel, message.recipient) == (
        MessagePurpose.DELIVERY,
        MessageChannel.EMAIL,
        order.email,
    )
    assert message.status == MessageStatus.PENDING and message.attempts == 0
    assert message.idempotency_key == f"delivery:{order.order_no}:email"
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert len([sql for sql in inserts if '"orders_outboxmessage"' in sql]) == 1
    row = OutboxMessage.objects.filter(pk=message.pk).values().get()
    assert not any("p-KEY-" in str(value) for value in row.values())
    assert mail.outbox == []  # nothing left the process inside the transaction

    assert dispatch() == 1
    assert len(mail.outbox) == 1 and "p-KEY-0" in mail.outbox[0].body


def test_a_delivery_that_rolls_back_leaves_no_message(pay, monkeypatch):
    import orders.delivery as delivery

    def boom(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(delivery, "commissions_post_for_order", boom)
    order = OrderFactory(product=stock_product(1, slug="p"))
    with pytest.raises(RuntimeError):
        pay(order)
    assert not OutboxMessage.objects.exists()


def test_one_message_per_order_purpose_channel_is_a_database_rule(pay):
    order = pay(OrderFactory(product=stock_product(1, slug="p")))
    with transaction.atomic():
        delivery_messages_enqueue(order=order)  # a replayed task: the same key, ignored
    assert OutboxMessage.objects.count() == 1
    first = OutboxMessage.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxMessage.objects.create(
            purpose=first.purpose,
            order=order,
            channel=first.channel,
            recipient="x@example.com",
            idempotency_key="another-key",
            next_attempt_at=timezone.now(),
        )


def test_delivery_email_is_html_and_text_with_the_how_to_and_a_stable_message_id(pay):
    product = stock_product(1, slug="game", name="Game")
    product.usage_instructions = "Open the launcher, choose Redeem, paste the key."
    product.save()
    order = pay(OrderFactory(product=product))
    dispatch()
    (email,) = mail.outbox
    message = OutboxMessage.objects.get()
    assert email.to == [order.email]
    assert "game-KEY-0" in email.body and "choose Redeem" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html" and "game-KEY-0" in html and "choose Redeem" in html
    assert email.extra_headers["Message-ID"] == message_id(message.idempotency_key)
    assert email.message()["Message-ID"] == message_id(message.idempotency_key)
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.sent_at
    assert message.provider_ref == message_id(message.idempotency_key)
    (attempt,) = MessageAttempt.objects.all()
    assert attempt.outcome == AttemptOutcome.SENT and attempt.order_id == order.pk
    assert attempt.finished_at and attempt.worker
    assert Delivery.objects.get(order=order).emailed_at is not None


def test_an_esp_message_id_is_kept_as_the_provider_reference(pay, settings):
    settings.EMAIL_BACKEND = "tests.email_backends.AnymailLikeBackend"
    pay(OrderFactory(product=stock_product(1, slug="p")))
    dispatch()
    assert OutboxMessage.objects.get().provider_ref == "esp-0001"


def test_failures_are_retried_with_exponential_backoff_then_the_chain_moves_on(pay, settings):
    settings.EMAIL_BACKEND = "tests.email_backends.DisconnectingEmailBackend"
    ShopSettings.objects.update_or_create(pk=1, defaults={"message_channels": "email,sms,inbox"})
    order = pay(OrderFactory(product=stock_product(1, slug="p"), phone="+15551234567"))
    email = OutboxMessage.objects.get()
    assert email.fallback == ["sms", "inbox"]

    delays = []
    for _ in range(settings.KAMI_OUTBOX_MAX_ATTEMPTS - 1):
        assert dispatch() == 1
        email.refresh_from_db()
        last = MessageAttempt.objects.filter(message=email).order_by("-number").first()
        assert email.status == MessageStatus.PENDING and last.outcome == AttemptOutcome.FAILED
        assert "SMTPServerDisconnected" in email.last_error
        delays.append(email.next_attempt_at - last.finished_at)
        assert dispatch() == 0  # not due before its backoff
        due_now()
    base = timedelta(seconds=settings.KAMI_OUTBOX_RETRY_SECONDS)
    assert delays == [base, base * 2, base * 4, base * 8] == [backoff(n) for n in range(1, 5)]

    assert dispatch() == 2  # the last email attempt gives up; its SMS follows at once
    email.refresh_from_db()
    assert email.status == MessageStatus.FAILED and email.attempts == 5
    assert MessageAttempt.objects.filter(message=email).count() == 5
    assert MessageAttempt.objects.filter(message=email).last().outcome == AttemptOutcome.GAVE_UP
    sms = OutboxMessage.objects.get(channel=MessageChannel.SMS)
    assert sms.status == MessageStatus.SENT and sms.recipient == "+15551234567"
    assert sms.fallback == ["inbox"] and sms.idempotency_key == f"delivery:{order.order_no}:sms"
    assert not OutboxMessage.objects.filter(channel=MessageChannel.INBOX).exists()
    assert MessageAttempt.objects.filter(order=order).count() == 6  # all on the order


def test_a_permanent_refusal_falls_back_at_once_and_sms_is_skipped_without_a_phone(
    pay, settings, client
):
    settings.EMAIL_BACKEND = "tests.email_backends.RefusingEmailBackend"
    order = pay(OrderFactory(product=stock_product(1, slug="p", name="Game")))  # no phone
    email = OutboxMessage.objects.get()
    assert email.fallback == ["inbox"]  # the shop default email,sms,inbox, minus SMS
    assert dispatch() == 2
    email.refresh_from_db()
    assert email.status == MessageStatus.FAILED and email.attempts == 1
    assert "refused" in email.last_error
    inbox = OutboxMessage.objects.get(channel=MessageChannel.INBOX)
    assert inbox.status == MessageStatus.SENT
    assert [e.subject for e in order.inbox.all()] == ["Your Game key(s) are ready"]


def test_the_product_chain_overrides_the_shop_default(pay):
    ShopSettings.objects.update_or_create(pk=1, defaults={"message_channels": "email"})
    product = stock_product(1, slug="p")
    product.message_channels = "inbox, email"
    product.save()
    order = pay(OrderFactory(product=product))
    message = OutboxMessage.objects.get()
    assert (message.channel, message.fallback, message.recipient) == (
        "inbox",
        ["email"],
        order.order_no,
    )
    other = pay(OrderFactory(product=stock_product(1, slug="q")))
    assert OutboxMessage.objects.get(order=other).fallback == []


def test_the_site_inbox_is_written_exactly_once_and_shown_to_the_buyer(pay, client):
    product = stock_product(1, slug="p", name="Game")
    product.message_channels = "inbox"
    product.usage_instructions = "Redeem it in the launcher."
    product.save()
    order = pay(OrderFactory(product=product))
    assert dispatch() == 1
    message = OutboxMessage.objects.get()
    # A dispatcher that recorded the inbox entry but is asked again: nothing more is written.
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.PENDING, sent_at=None, next_attempt_at=timezone.now()
    )
    dispatch()
    assert order.inbox.count() == 1
    assert "Redeem it in the launcher." in order.inbox.get().body
    assert "p-KEY-0" not in order.inbox.get().body  # keys are shown from the order, not stored

    lookup = client.get(f"/api/v1/orders/{order.order_no}", {"email": order.email})
    assert lookup.status_code == 200
    (entry,) = lookup.json()["inbox"]
    assert entry["subject"] == "Your Game key(s) are ready" and "launcher" in entry["body"]
    page = client.post("/lookup", {"order_no": order.order_no, "email_or_password": order.email})
    page = client.get(page["Location"])
    assert b"Redeem it in the launcher." in page.content and b"p-KEY-0" in page.content


def test_a_crash_between_send_and_record_resends_once_with_the_same_message_id(pay):
    pay(OrderFactory(product=stock_product(1, slug="p")))
    (claim,) = messages_claim(limit=10)
    from orders.outbox.channels import CHANNELS
    from orders.outbox.content import render

    # The dispatcher sends, then dies before it records anything.
    CHANNELS["email"].send(claim.message, render(claim.message))
    assert dispatch() == 0  # claimed: nobody else sends it while the claim holds
    OutboxMessage.objects.update(next_attempt_at=timezone.now())  # the lease lapses
    assert dispatch() == 1
    first, second = mail.outbox
    assert first.message()["Message-ID"] == second.message()["Message-ID"]
    attempts = list(MessageAttempt.objects.order_by("number").values_list("outcome", flat=True))
    assert attempts == [AttemptOutcome.UNKNOWN, AttemptOutcome.SENT]
    assert OutboxMessage.objects.get().status == MessageStatus.SENT
    assert dispatch() == 0  # and never again


def test_two_dispatchers_never_claim_the_same_message(pay):
    for i in range(3):
        pay(OrderFactory(product=stock_product(1, slug=f"p{i}")))
    first = messages_claim(limit=2)
    second = messages_claim(limit=10)
    assert len(first) == 2 and len(second) == 1
    assert {c.message.pk for c in first}.isdisjoint({c.message.pk for c in second})
    for claim in first + second:
        message_send(claim)
    assert len(mail.outbox) == 3


def test_the_owner_vocabulary_matches_the_channels():
    """The buyer's chain names every buyer channel; the owner's IM destinations are channels
    the chain cannot name."""
    from orders.notices.models import NotifierKind
    from orders.outbox.content import NOTICE_CHANNELS

    assert set(MESSAGE_CHANNELS) | set(NOTICE_CHANNELS) == set(MessageChannel.values)
    assert set(MESSAGE_CHANNELS).isdisjoint(NOTICE_CHANNELS)
    assert set(NotifierKind.values) == {"email", *NOTICE_CHANNELS}


def test_an_email_task_queued_before_the_upgrade_writes_the_missing_message(pay):
    from orders.tasks import send_delivery_email

    order = pay(OrderFactory(product=stock_product(1, slug="p")))
    OutboxMessage.objects.all().delete()  # as if delivered by the version before the outbox
    assert send_delivery_email(order.pk) is True
    assert send_delivery_email(order.pk) is False  # its message exists now
    assert dispatch() == 1 and len(mail.outbox) == 1
    assert send_delivery_email(order.pk) is False  # emailed
