"""The Stripe webhook with real Stripe-format, HMAC-signed events (contract §5)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cardpool.models import CardKey
from cardpool.services import keys_import
from orders.models import Delivery, Order, OrderEvent, OrderStatus, PaymentEvent
from orders.payments.stripe_events import build_event, checkout_session_object
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event, refund_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Post an event and run what it enqueues after commit, as the in-process worker does."""

    def _post(event, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, event, **kwargs)

    return _post


@pytest.fixture
def order():
    return OrderFactory(product=stock_product(3, slug="p"), quantity=2)


def test_valid_event_delivers_keys_once_and_emails_them(deliver, order):
    response = deliver(completed_event(order))
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.paid_at and order.delivered_at and order.paid_amount == order.amount
    keys = list(
        CardKey.objects.filter(order=order, status="sold")
        .order_by("slot")
        .values_list("slot", flat=True)
    )
    assert keys == [1, 2]
    assert Delivery.objects.get(order=order).key_count == 2
    assert PaymentEvent.objects.get().processed_at is not None
    assert len(mail.outbox) == 1 and "p-KEY-0" in mail.outbox[0].body
    assert [e.kind for e in order.events.all()] == ["paid", "delivered"]


@pytest.mark.parametrize(
    "signature",
    ["", "garbage", "t=abc,v1=deadbeef", "t=1700000000", "v1=00"],
)
def test_missing_or_malformed_signature_is_400_and_stores_nothing(client, order, signature):
    response = post_event(client, completed_event(order), signature=signature)
    assert response.status_code == 400
    assert PaymentEvent.objects.count() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_forged_signature_is_400(client, order):
    response = post_event(client, completed_event(order), secret="whsec_attacker")
    assert response.status_code == 400
    assert PaymentEvent.objects.count() == 0


def test_stale_signature_outside_tolerance_is_400(client, order):
    response = post_event(client, completed_event(order), timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert PaymentEvent.objects.count() == 0


def test_body_tampered_after_signing_is_400(client, order):
    from orders.payments.stripe_events import encode, sign_payload

    event = completed_event(order)
    header = sign_payload(encode(event), "whsec_test_kami_webhook_secret")
    event["data"]["object"]["amount_total"] = 1
    assert post_event(client, event, signature=header).status_code == 400


def test_replayed_event_is_acknowledged_and_does_nothing(deliver, order):
    event = completed_event(order)
    assert deliver(event).status_code == 200
    again = deliver(event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert PaymentEvent.objects.count() == 1
    assert CardKey.objects.filter(order=order, status="sold").count() == 2
    assert len(mail.outbox) == 1


def test_second_event_for_same_session_does_not_deliver_twice(deliver, order):
    first = completed_event(order, session_id="cs_test_same", payment_intent="pi_same")
    second = completed_event(order, session_id="cs_test_same", payment_intent="pi_same")
    assert first["id"] != second["id"]
    deliver(first)
    deliver(second)
    assert Delivery.objects.filter(order=order).count() == 1
    assert CardKey.objects.filter(order=order, status="sold").count() == 2
    assert order.events.filter(kind="duplicate_payment_event").exists()


def test_second_session_paid_for_same_order_is_flagged_not_delivered(deliver, order):
    deliver(completed_event(order, session_id="cs_one"))
    deliver(completed_event(order, session_id="cs_two"))
    assert CardKey.objects.filter(order=order, status="sold").count() == 2
    assert order.events.filter(kind="second_payment").exists()


@pytest.mark.parametrize(
    "session_kwargs", [{"amount_total": 1}, {"currency": "eur"}], ids=["amount", "currency"]
)
def test_amount_or_currency_mismatch_holds_and_never_delivers(deliver, order, session_kwargs):
    deliver(completed_event(order, **session_kwargs))
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    assert CardKey.objects.filter(order=order, status="sold").count() == 0
    assert order.events.filter(kind="payment_mismatch").exists()


def test_unpaid_session_does_not_deliver(deliver, order):
    deliver(completed_event(order, payment_status="unpaid"))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_event_for_unknown_order_is_stored_and_processed(deliver, order):
    event = completed_event(order)
    event["data"]["object"]["metadata"]["order_no"] = "K000NOPE"
    event["data"]["object"]["client_reference_id"] = "K000NOPE"
    assert deliver(event).status_code == 200
    assert PaymentEvent.objects.get().processed_at is not None


def test_unhandled_event_type_is_acknowledged(deliver):
    assert deliver(build_event("customer.created", {"id": "cus_1"})).status_code == 200


def test_session_expired_expires_pending_order(deliver, order):
    deliver(
        build_event(
            "checkout.session.expired", checkout_session_object(order, payment_status="unpaid")
        )
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED


def test_late_payment_delivers_if_keys_remain(deliver):
    order = OrderFactory(
        product=stock_product(1, slug="p"),
        hold_expires_at=timezone.now() - timedelta(minutes=1),
        status="expired",
    )
    deliver(completed_event(order))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_late_payment_without_keys_is_backordered_then_delivered_on_restock(
    deliver, django_capture_on_commit_callbacks
):
    product = stock_product(1, slug="p")
    late = OrderFactory(product=product, hold_expires_at=timezone.now() - timedelta(minutes=1))
    on_time = OrderFactory(product=product)  # holds the only key
    deliver(completed_event(late))
    late.refresh_from_db()
    assert late.status == OrderStatus.BACKORDERED
    deliver(completed_event(on_time))
    on_time.refresh_from_db()
    assert on_time.status == OrderStatus.DELIVERED  # paid in time: its hold was honoured
    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="RESTOCK-1")
    late.refresh_from_db()
    assert late.status == OrderStatus.DELIVERED
    assert list(late.keys.values_list("slot", flat=True)) == [1]


def test_backorders_are_served_first_paid_first(deliver, django_capture_on_commit_callbacks):
    product = stock_product(0, slug="p")
    lapsed = timezone.now() - timedelta(minutes=1)
    first = OrderFactory(product=product, hold_expires_at=lapsed)
    second = OrderFactory(product=product, hold_expires_at=lapsed)
    deliver(completed_event(first))
    deliver(completed_event(second))
    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="ONLY-ONE")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (OrderStatus.DELIVERED, OrderStatus.BACKORDERED)


def test_full_refund_marks_refunded_and_keeps_keys(deliver, order):
    deliver(completed_event(order, payment_intent="pi_refund"))
    deliver(refund_event("pi_refund", amount=order.amount, amount_refunded=order.amount))
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_amount == order.amount
    assert CardKey.objects.filter(order=order, status="sold").count() == 2


def test_partial_refund_is_recorded_and_replays_are_harmless(deliver, order):
    deliver(completed_event(order, payment_intent="pi_part"))
    partial = refund_event("pi_part", amount=order.amount, amount_refunded=500)
    deliver(partial)
    deliver(refund_event("pi_part", amount=order.amount, amount_refunded=500))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.refunded_amount == 500
    assert order.events.filter(kind="partial_refund").count() == 1


def test_dispute_is_recorded(deliver, order):
    deliver(completed_event(order, payment_intent="pi_disp"))
    deliver(
        build_event(
            "charge.dispute.created",
            {
                "id": "dp_1",
                "object": "dispute",
                "payment_intent": "pi_disp",
                "charge": "ch_1",
                "amount": order.amount,
                "currency": "usd",
                "reason": "fraudulent",
            },
        )
    )
    order.refresh_from_db()
    assert order.disputed_at is not None
    assert OrderEvent.objects.filter(order=order, kind="dispute_opened").exists()


def test_failed_processing_rolls_back_records_error_and_sweeper_retries(
    deliver, order, monkeypatch, django_capture_on_commit_callbacks
):
    import orders.delivery as delivery

    def boom(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(delivery, "commissions_post_for_order", boom)
    assert deliver(completed_event(order)).status_code == 200  # stored: Stripe must not resend
    order.refresh_from_db()
    event = PaymentEvent.objects.get()
    assert order.status == OrderStatus.PENDING  # the whole delivery rolled back
    assert CardKey.objects.filter(order=order, status="sold").count() == 0
    assert event.processed_at is None and "ledger unavailable" in event.last_error
    assert event.last_error.startswith("Traceback") and "boom" in event.last_error
    assert event.attempts >= 1

    monkeypatch.undo()
    from orders.tasks import sweep_unprocessed_payment_events

    PaymentEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_unprocessed_payment_events() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert Order.objects.get(pk=order.pk).delivery.key_count == 2
    assert PaymentEvent.objects.get().last_error == ""  # cleared once processed


def test_sandbox_refund_goes_through_the_inbox(deliver, order, django_capture_on_commit_callbacks):
    from orders.payments.refunds import payment_refund

    deliver(completed_event(order))
    with django_capture_on_commit_callbacks(execute=True):
        payment_refund(order=order, amount=100)
    order.refresh_from_db()
    assert order.refunded_amount == 100 and order.status == OrderStatus.DELIVERED
    with django_capture_on_commit_callbacks(execute=True):
        payment_refund(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_amount == order.amount
    assert PaymentEvent.objects.filter(type="charge.refunded").count() == 2


def test_refund_of_unpaid_order_is_refused(order):
    from core.errors import InvalidInput
    from orders.payments.refunds import payment_refund

    with pytest.raises(InvalidInput):
        payment_refund(order=order)


def test_refund_processed_before_its_checkout_event_is_retried_not_dropped(
    client, order, django_capture_on_commit_callbacks
):
    from orders.payments.processing import payment_event_process
    from orders.tasks import sweep_unprocessed_payment_events

    refund = refund_event("pi_early", amount=order.amount, amount_refunded=order.amount)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, refund).status_code == 200  # processing fails: no order yet
    early = PaymentEvent.objects.get(type="charge.refunded")
    assert early.processed_at is None and "matches no order yet" in early.last_error
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, completed_event(order, payment_intent="pi_early"))
    PaymentEvent.objects.filter(pk=early.pk).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        sweep_unprocessed_payment_events()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.refunded_amount == order.amount
    # A day later an unmatched event is given up on (processed) rather than retried forever.
    stray = refund_event("pi_never", amount=100, amount_refunded=100)
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, stray)
    row = PaymentEvent.objects.get(event_id=stray["id"])
    PaymentEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=2))
    assert payment_event_process(event_id=row.pk) is True


def test_delayed_webhook_of_a_payment_in_time_keeps_its_place_in_line(
    deliver, django_capture_on_commit_callbacks
):
    product = stock_product(0, slug="p")
    paid = timezone.now() - timedelta(minutes=20)  # when Stripe took the money
    in_time = OrderFactory(product=product, hold_expires_at=paid + timedelta(minutes=1))
    Order.objects.filter(pk=in_time.pk).update(created_at=paid - timedelta(minutes=5))
    late = OrderFactory(product=product, hold_expires_at=timezone.now() - timedelta(minutes=1))
    deliver(completed_event(late))  # paid just now, after its hold: backordered, queued now
    delayed = completed_event(in_time)
    delayed["created"] = int(paid.timestamp())
    deliver(delayed)  # reaches us 20 minutes late (an outage)
    in_time.refresh_from_db()
    assert abs((in_time.paid_at - paid).total_seconds()) < 1
    assert in_time.queued_at == in_time.created_at  # paid inside its hold
    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="ONE")
    in_time.refresh_from_db()
    late.refresh_from_db()
    assert (in_time.status, late.status) == (OrderStatus.DELIVERED, OrderStatus.BACKORDERED)


def test_order_approved_after_review_does_not_take_keys_held_by_a_newer_buyer(deliver):
    from orders.delivery import order_deliver
    from orders.locks import lock_order

    product = stock_product(1, slug="p")
    reviewed = OrderFactory(product=product)
    deliver(completed_event(reviewed, amount_total=1))  # wrong amount: on hold, claims nothing
    reviewed.refresh_from_db()
    assert reviewed.status == OrderStatus.ON_HOLD
    newer = OrderFactory(product=product)  # stock showed 1: its checkout holds that key
    from django.db import transaction

    with transaction.atomic():
        assert order_deliver(order=lock_order(reviewed.pk)) is None  # approval: backordered
    deliver(completed_event(newer))
    newer.refresh_from_db()
    reviewed.refresh_from_db()
    assert newer.status == OrderStatus.DELIVERED  # paid inside its hold: it gets its key
    assert reviewed.status == OrderStatus.BACKORDERED


def test_old_backorder_is_delivered_without_a_latency_and_broken_ones_do_not_block(
    deliver, django_capture_on_commit_callbacks
):
    product = stock_product(0, slug="p")
    lapsed = timezone.now() - timedelta(minutes=1)
    first = OrderFactory(product=product, hold_expires_at=lapsed)
    second = OrderFactory(product=product, hold_expires_at=lapsed)
    deliver(completed_event(first))
    deliver(completed_event(second))
    Order.objects.filter(pk=first.pk).update(paid_at=timezone.now() - timedelta(days=40))
    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="K1\nK2")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (OrderStatus.DELIVERED, OrderStatus.DELIVERED)
    assert first.delivery.latency_ms is None


def test_rejected_order_with_refund_underway_can_never_be_delivered(deliver, order, monkeypatch):
    from django.db import transaction

    from orders.delivery import order_deliver
    from orders.locks import lock_order
    from orders.payments.refunds import payment_refund

    deliver(completed_event(order, amount_total=1))
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    # Its charge.refunded has not come back yet (the sandbox's would, so keep it away).
    monkeypatch.setattr("orders.payments.refunds.payment_event_receive", lambda **kw: None)
    payment_refund(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUND_REQUESTED
    with pytest.raises(ValueError, match="not deliverable"), transaction.atomic():
        order_deliver(order=lock_order(order.pk))
    assert CardKey.objects.filter(order=order, status="sold").count() == 0


def test_the_inbox_keeps_the_raw_body_and_headers_so_events_can_be_verified_again(deliver, order):
    from orders.payments.inbox import payment_event_reverify
    from orders.payments.stripe_events import encode

    event = completed_event(order)
    deliver(event)
    stored = PaymentEvent.objects.get()
    assert bytes(stored.body) == encode(event)  # byte for byte what was signed
    assert stored.headers["Stripe-Signature"].startswith("t=")
    assert stored.headers["Content-Type"] == "application/json"
    assert payment_event_reverify(event=stored)

    stored.body = bytes(stored.body).replace(b'"paid"', b'"PAID"')
    assert not payment_event_reverify(event=stored)
    stored.body = b""
    assert not payment_event_reverify(event=stored)
