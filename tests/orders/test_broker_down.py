"""A broker that refuses: the webhook still answers 200 once the event is stored, a processed
event is never marked failed because a message could not be queued, and the sweeps (which
need only the database) deliver and send what the lost tasks would have."""

from __future__ import annotations

import socket

import pytest
from django.core import mail
from django.utils import timezone

from orders.models import MessageStatus, Order, OrderStatus, OutboxMessage, PaymentEvent
from orders.outbox.dispatch import messages_dispatch
from orders.payments.processing import payment_event_process
from orders.payments.sweep import SWEEP_AFTER, payment_events_stranded, sweep_backoff
from orders.tasks import sweep_unprocessed_payment_events
from shop.celery import app as celery_app
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _reset_broker_pools() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def refusing_broker():
    """Tasks are published for real (not run in-process) to a Redis port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = celery_app.conf
    previous = (conf.task_always_eager, conf.broker_url)
    conf.task_always_eager = False
    conf.broker_url = f"redis://127.0.0.1:{port}/0"
    _reset_broker_pools()
    try:
        yield
    finally:
        conf.task_always_eager, conf.broker_url = previous
        _reset_broker_pools()


def stranded_for_a_while() -> None:
    PaymentEvent.objects.update(received_at=timezone.now() - SWEEP_AFTER * 2)


def test_the_webhook_answers_200_once_stored_while_the_broker_refuses(
    client, refusing_broker, django_capture_on_commit_callbacks
):
    order = OrderFactory(product=stock_product(1, slug="p"))
    event = completed_event(order)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(client, event)
    assert response.status_code == 200 and response.json()["duplicate"] is False
    stored = PaymentEvent.objects.get()
    assert stored.processed_at is None and stored.last_error == ""

    # Stripe's retry: acknowledged as a duplicate, and the owed processing queued again.
    with django_capture_on_commit_callbacks(execute=True):
        again = post_event(client, event)
    assert again.status_code == 200 and again.json()["duplicate"] is True

    stranded_for_a_while()
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_unprocessed_payment_events() == 1  # needs no broker
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert PaymentEvent.objects.get().processed_at is not None
    # The delivery's kick could not be queued either: its message waits in the outbox.
    assert mail.outbox == []
    assert messages_dispatch() == 1
    assert len(mail.outbox) == 1 and OutboxMessage.objects.get().status == MessageStatus.SENT


def test_a_processed_event_is_never_left_failed_because_a_message_could_not_be_queued(
    client, refusing_broker, django_capture_on_commit_callbacks
):
    order = OrderFactory(product=stock_product(1, slug="p"))
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, completed_event(order))
    event = PaymentEvent.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_event_process(event_id=event.pk) is True
    event.refresh_from_db()
    assert event.processed_at is not None
    assert event.last_error == "" and event.attempts == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert OutboxMessage.objects.get().status == MessageStatus.PENDING  # sent by the sweep


def test_the_sweep_takes_stranded_events_and_backs_off_a_failing_one(client, monkeypatch):
    import orders.payments.sweep as sweep

    order = OrderFactory(product=stock_product(1, slug="p"))
    PaymentEvent.objects.create(
        provider="stripe",
        event_id="evt_stranded",
        type="checkout.session.completed",
        payload=completed_event(order),
    )
    assert payment_events_stranded() == []  # just arrived: its task may be on its way
    stranded_for_a_while()
    (stranded,) = payment_events_stranded()

    def failing(**kwargs):
        PaymentEvent.objects.filter(pk=stranded).update(attempts=3, last_error="boom")
        raise RuntimeError("boom")

    monkeypatch.setattr(sweep, "payment_event_process", failing)
    assert sweep.payment_events_sweep() == 0  # the failure is recorded, never raised
    event = PaymentEvent.objects.get(pk=stranded)
    assert event.next_attempt_at - timezone.now() > sweep_backoff(2)  # three failures: 20 s
    assert payment_events_stranded() == []  # backing off
    PaymentEvent.objects.filter(pk=stranded).update(next_attempt_at=timezone.now())
    monkeypatch.undo()
    assert sweep.payment_events_sweep() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_the_sweep_leaves_an_event_being_processed_to_its_worker(client):
    """SKIP LOCKED: a sweep never waits behind (or doubles) a delivery in progress."""
    import threading

    from django.db import connections, transaction

    from orders.locks import lock_payment_event

    order = OrderFactory(product=stock_product(1, slug="p"))
    event = PaymentEvent.objects.create(
        provider="stripe", event_id="evt_busy", type="x", payload=completed_event(order)
    )
    stranded_for_a_while()
    holding, release = threading.Event(), threading.Event()

    def processing_elsewhere() -> None:
        with transaction.atomic():
            lock_payment_event(event.pk)
            holding.set()
            release.wait(10)
        connections["default"].close()

    holder = threading.Thread(target=processing_elsewhere)
    holder.start()
    try:
        assert holding.wait(10)
        assert payment_events_stranded() == [event.pk]
        assert payment_event_process(event_id=event.pk, skip_locked=True) is False
    finally:
        release.set()
        holder.join(10)


def test_both_sweeps_run_every_few_seconds_from_beat(settings):
    tasks = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["orders.tasks.sweep_unprocessed_payment_events"] == settings.KAMI_SWEEP_SECONDS
    assert tasks["orders.tasks.dispatch_messages"] == settings.KAMI_SWEEP_SECONDS
    assert settings.KAMI_SWEEP_SECONDS < 60 and settings.KAMI_WORKER_SWEEP_SECONDS > 0
