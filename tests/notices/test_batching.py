"""The owner hears about new orders, backorders, holds and buyers not reached — opt-in per
destination and event, batched so a flood is one message, exactly once."""

from __future__ import annotations

import pytest
from django.core import mail

from orders.models import NoticeBatch, NoticeItem, OrderStatus, PendingNotice
from orders.outbox.dispatch import messages_dispatch
from tests.factories import OrderFactory, stock_product
from tests.notices.conftest import notifier, owner_messages, windows_close

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_nothing_is_sent_until_the_owner_opts_in(pay):
    product = stock_product(3, slug="p")
    pay(OrderFactory(product=product))
    notifier(events=[])  # a destination with no event ticked
    notifier("email", "off@example.com", enabled=False)
    pay(OrderFactory(product=product))
    messages_dispatch()
    windows_close()
    messages_dispatch()
    assert not owner_messages().exists()
    assert not NoticeBatch.objects.exists()
    assert not PendingNotice.objects.exists()  # consumed, not piling up
    assert len(mail.outbox) == 2  # the two buyers' keys, nothing else


def test_a_flood_is_one_message_when_the_window_closes(pay):
    owner = notifier("email", "owner@example.com", batch_seconds=60)
    product = stock_product(30, slug="steam-100", name="Steam 100")
    orders = [pay(OrderFactory(product=product, email=f"buyer{i}@example.com")) for i in range(25)]
    backordered = pay(OrderFactory(product=stock_product(0, slug="empty", name="Empty")))
    held = pay(OrderFactory(product=product), amount_total=1)
    assert backordered.status == OrderStatus.BACKORDERED and held.status == OrderStatus.ON_HOLD

    messages_dispatch()
    assert not owner_messages().exists()  # the window is still open
    batch = NoticeBatch.objects.get(notifier=owner, status=NoticeBatch.Status.OPEN)
    assert batch.items.count() == 27  # each order once: as what asks most of the owner
    assert (batch.due_at - min(i.occurred_at for i in batch.items.all())).total_seconds() == 60

    windows_close()
    mail.outbox.clear()
    messages_dispatch()
    (email,) = mail.outbox
    assert email.to == ["owner@example.com"]
    assert email.subject == ("[Kami Test] 1 order on hold · 1 order backordered · 25 new orders")
    assert "New orders (paid): 25 (247.50 USD)" in email.body
    assert f"{orders[0].order_no}  Steam 100 × 1" in email.body
    assert "… and 15 more" in email.body
    assert f"{held.order_no}  Steam 100 × 1" in email.body
    assert "Held: paid amount or currency differs" in email.body
    assert "/admin/orders/order/?status__exact=on_hold" in email.body
    assert "@example.com" not in email.body  # no buyer's address in a notification
    batch.refresh_from_db()
    assert batch.status == NoticeBatch.Status.CLOSED
    assert owner_messages().get().idempotency_key == batch.message_key
    owner.refresh_from_db()
    assert owner.latest_message_key == batch.message_key  # its state, shown in the admin

    messages_dispatch()  # nothing new: nothing more
    assert len(mail.outbox) == 1 and owner_messages().count() == 1


def test_each_destination_hears_only_what_it_ticked(pay):
    holds = notifier("email", "holds@example.com", events=["hold"], batch_seconds=0)
    sales = notifier("email", "sales@example.com", events=["new_order"], batch_seconds=0)
    product = stock_product(5, slug="p")
    pay(OrderFactory(product=product))
    pay(OrderFactory(product=product), currency="eur")  # a mismatch: on hold, not paid
    messages_dispatch()
    assert set(NoticeItem.objects.filter(notifier=holds).values_list("kind", flat=True)) == {"hold"}
    assert list(NoticeItem.objects.filter(notifier=sales).values_list("kind", flat=True)) == [
        "new_order"
    ]
    by_recipient = {m.to[0]: m.subject for m in mail.outbox if m.to[0] != "buyer@example.com"}
    assert by_recipient["holds@example.com"] == "[Kami Test] 1 order on hold"
    assert by_recipient["sales@example.com"] == "[Kami Test] 1 new order"


def test_events_after_a_batch_closed_open_the_next_one(pay):
    notifier("email", "owner@example.com", events=["new_order"], batch_seconds=60)
    product = stock_product(3, slug="p")
    pay(OrderFactory(product=product))
    messages_dispatch()
    windows_close()
    messages_dispatch()
    pay(OrderFactory(product=product))
    messages_dispatch()
    batches = list(NoticeBatch.objects.order_by("id").values_list("status", flat=True))
    assert batches == [NoticeBatch.Status.CLOSED, NoticeBatch.Status.OPEN]
    assert owner_messages().count() == 1


def test_a_buyer_not_reached_on_any_channel_is_in_the_order_history_and_told(pay, settings):
    """The product's chain is email only and the mail server refuses the address: the outbox
    gives up on the last channel, the order's history says so and the owner hears of it."""
    settings.EMAIL_BACKEND = "tests.notices.test_batching.RefusingServer"
    notifier("email", "owner@example.com", events=["delivery_failed"], batch_seconds=0)
    order = pay(OrderFactory(product=stock_product(1, slug="p", message_channels="email")))
    messages_dispatch()
    event = order.events.get(kind="message_failed")
    assert event.data == {"purpose": "delivery", "channels": ["email"]}
    item = NoticeItem.objects.get()
    assert (item.kind, item.order_id, item.detail) == (
        "delivery_failed",
        order.pk,
        "delivery: email",
    )
    owner_email = owner_messages().get()
    assert owner_email.recipient == "owner@example.com"
    assert "1 buyer not reached on any channel" in owner_email.payload["subject"]
    assert "buyer@" not in owner_email.payload["text"]


class RefusingServer:
    """Refuses every buyer's address, delivers the owner's (a mail server that knows it)."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        import smtplib

        for message in messages:
            if message.to != ["owner@example.com"]:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"no such user")})
            mail.outbox.append(message)
        return len(messages)


def test_the_sweep_batches_and_sends_with_no_broker(pay):
    """No task was queued (the broker is down): the workers' sweep moves notices too."""
    from orders.tasks import sweep_stranded_work

    notifier("email", "owner@example.com", events=["new_order"], batch_seconds=0)
    pay(OrderFactory(product=stock_product(1, slug="p")))
    sweep_stranded_work()
    assert owner_messages().get().status == "sent"
    assert any(m.to == ["owner@example.com"] for m in mail.outbox)


def test_a_destination_turned_off_while_collecting_gets_nothing(pay):
    owner = notifier("email", "owner@example.com", batch_seconds=60)
    pay(OrderFactory(product=stock_product(1, slug="p")))
    messages_dispatch()
    owner.enabled = False
    owner.save()
    windows_close()
    messages_dispatch()
    batch = NoticeBatch.objects.get()
    assert batch.status == NoticeBatch.Status.CLOSED and batch.message_key == ""
    assert not owner_messages().exists()


def test_a_chinese_shop_hears_in_chinese(pay, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    notifier("email", "owner@example.com", batch_seconds=0)
    pay(OrderFactory(product=stock_product(1, slug="p")))
    messages_dispatch()
    message = owner_messages().get()
    assert message.payload["subject"] == "[Kami Test] 1 个新订单"
    assert "新订单（已付款）: 1" in message.payload["text"]


def test_a_process_batches_at_most_once_per_interval(pay, settings):
    """Under load a dispatch follows every sale: the passes are spaced, the notices wait."""
    from orders.notices import batching

    settings.KAMI_NOTICES_PASS_SECONDS = 60
    batching._last_pass = float("-inf")
    notifier("email", "owner@example.com", events=["new_order"], batch_seconds=0)
    pay(OrderFactory(product=stock_product(2, slug="p")))
    messages_dispatch()
    assert owner_messages().count() == 1
    pay(OrderFactory(product=stock_product(2, slug="q")))
    messages_dispatch()  # within the interval: the notice waits
    assert owner_messages().count() == 1 and PendingNotice.objects.count() == 1
    batching._last_pass -= 61
    messages_dispatch()
    assert owner_messages().count() == 2 and not PendingNotice.objects.exists()
