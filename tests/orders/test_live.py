"""The publishing side of live updates (``orders.live``): what a transition hands over, when,
and at what cost to the order's transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders import live, transitions
from orders.models import OrderStatus
from orders.transitions import Step, order_transition_path
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def sent(monkeypatch) -> list:
    """What ``orders.live`` hands to its sender loop, instead of sending it."""
    out: list = []
    monkeypatch.setattr(live, "_publish", lambda sends: out.append(sends))
    return out


def test_masked_email_keeps_the_first_letter_and_the_domain():
    assert live.masked_email("Buyer@Example.com") == "B***@Example.com"
    assert live.masked_email("x@y.z") == "x***@y.z"
    assert live.masked_email("") == "***"


def test_one_publish_per_transition_path_after_commit(sent, django_capture_on_commit_callbacks):
    order = OrderFactory(product=stock_product(1), amount=1990, unit_price=1990)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        order_transition_path(
            order=order, steps=[Step(OrderStatus.PAID), Step(OrderStatus.REFUNDED)]
        )
        assert sent == []  # nothing before the commit
    assert len(callbacks) == 1
    [sends] = sent
    assert sends[0] == (
        f"order.{order.order_no}",
        {"type": "order.status", "order_no": order.order_no, "status": "refunded"},
    )
    group, line = sends[1]
    assert group == live.FEED_GROUP
    assert line["amount"] == "19.90" and line["status"] == "refunded"
    assert line["email"].endswith("@example.com") and "***" in line["email"]
    assert line["product_id"] == order.product_id


def test_the_hook_adds_no_query_to_the_transition(monkeypatch):
    """The feed's line is built from the order in memory: no query for the product's name."""
    product = stock_product(2)
    Order = type(OrderFactory(product=product))
    first, second = (OrderFactory(product=product) for _ in range(2))

    def queries(order) -> int:
        order = Order.objects.get(pk=order.pk)  # product not loaded, as lock_order leaves it
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            order_transition_path(order=order, steps=[Step(OrderStatus.PAID)])
        return len(captured)

    with_hook = queries(first)
    monkeypatch.setattr(transitions, "status_changed", lambda order, status: None)
    assert with_hook == queries(second)


def test_a_forked_process_starts_its_own_sender_loop(monkeypatch):
    """A prefork worker's child inherits the parent's loop object but not its thread."""
    import asyncio
    import os

    inherited = asyncio.new_event_loop()  # never run: as the child sees the parent's
    monkeypatch.setattr(live, "_own_loop", (os.getpid() + 1, inherited))
    monkeypatch.setattr(live, "_bound_loop", (os.getpid() + 1, inherited))
    loop = live._sender_loop()
    assert loop is not inherited
    assert asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "sent"), loop).result(5) == "sent"
    inherited.close()


def test_a_payment_event_that_fails_is_a_line_in_the_feed(sent, monkeypatch):
    """The transaction rolled back, so no status changed; the feed says it failed, and why."""
    from django.conf import settings

    import orders.delivery as delivery
    from orders.payments.inbox import payment_event_receive
    from orders.payments.processing import payment_event_process
    from orders.payments.stripe_events import (
        build_event,
        checkout_session_object,
        encode,
        sign_payload,
    )

    order = OrderFactory(product=stock_product(1))
    payload = encode(build_event("checkout.session.completed", checkout_session_object(order)))
    event, _ = payment_event_receive(
        payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    )

    def boom(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(delivery, "commissions_post_for_order", boom)
    with pytest.raises(RuntimeError):
        payment_event_process(event_id=event.pk)
    [[(group, line)]] = sent
    assert group == live.FEED_GROUP
    assert (line["event"], line["order_no"], line["status"]) == (
        "failure",
        order.order_no,
        "failed",
    )
    assert line["error"] == "RuntimeError: ledger unavailable"
