"""A late payer whose keys are gone waits as a backorder, then is refunded automatically
(``orders.backorder_refunds``): exactly once, enforced by the database; delivered instead if a
restock comes first. The sandbox records the refund as a signed ``charge.refunded``; for
Stripe only the outbound HTTP call is stubbed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from django.db import IntegrityError, transaction
from django.test import Client, TestCase, override_settings
from django.utils import timezone

from cardpool.services import keys_import
from orders.backorder_refunds import backorders_refund_overdue
from orders.events import OrderEventKind
from orders.models import Order, OrderEvent, OrderStatus, PaymentEvent
from orders.review import order_review_approve
from orders.transitions import Step, order_transition_path
from shop.models import ShopSettings
from tests.concurrency import run_concurrently
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import StripeRefundsHTTP, completed_event, post_event, refund_event

pytestmark = [pytest.mark.postgres]

WINDOW = timedelta(hours=24)  # ShopSettings.backorder_refund_after_hours' default


def after_commit():
    """Run what would run after commit (the inbox's task, restock deliveries) right away."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def pay(order: Order) -> Order:
    with after_commit():
        assert post_event(Client(), completed_event(order)).status_code == 200
    order.refresh_from_db()
    return order


def late_payer(product) -> Order:
    """A buyer who checked out without a hold and paid after the last key was gone."""
    order = pay(OrderFactory(product=product, holds_keys=False, reserve=False))
    assert order.status == OrderStatus.BACKORDERED and order.backordered_at is not None
    return order


def waited(order: Order, delta: timedelta) -> None:
    Order.objects.filter(pk=order.pk).update(backordered_at=timezone.now() - delta)


def sweep() -> int:
    with after_commit():
        return backorders_refund_overdue()


def automatic_refunds(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, kind=OrderEventKind.BACKORDER_REFUND).count()


@pytest.mark.django_db
def test_a_late_payer_is_backordered_then_refunded_once_after_the_window():
    product = stock_product(1, slug="last")
    holder = OrderFactory(product=product)  # holds the last key
    late = late_payer(product)
    assert sweep() == 0  # inside the window: it waits
    waited(late, WINDOW - timedelta(minutes=1))
    assert sweep() == 0

    waited(late, WINDOW + timedelta(minutes=1))
    assert sweep() == 1
    late.refresh_from_db()
    assert late.status == OrderStatus.REFUNDED and late.refunded_amount == late.amount
    assert automatic_refunds(late) == 1
    assert PaymentEvent.objects.filter(type="charge.refunded", order=late).count() == 1
    assert [sweep(), sweep()] == [0, 0]  # never again
    assert PaymentEvent.objects.filter(type="charge.refunded").count() == 1

    assert pay(holder).status == OrderStatus.DELIVERED  # the hold's promise was kept


@pytest.mark.django_db
def test_a_restock_inside_the_window_delivers_instead():
    product = stock_product(0, slug="restocked")
    late = late_payer(product)
    waited(late, WINDOW - timedelta(hours=1))
    with after_commit():
        keys_import(product=product, text="NEW-1")
    late.refresh_from_db()
    assert late.status == OrderStatus.DELIVERED
    waited(late, WINDOW * 2)
    assert sweep() == 0
    late.refresh_from_db()
    assert late.status == OrderStatus.DELIVERED and automatic_refunds(late) == 0


@pytest.mark.django_db
def test_the_owner_can_switch_automatic_refunds_off():
    late = late_payer(stock_product(0, slug="off"))
    ShopSettings.objects.update_or_create(pk=1, defaults={"backorder_refund_after_hours": 0})
    waited(late, timedelta(days=30))
    assert sweep() == 0
    assert Order.objects.get(pk=late.pk).status == OrderStatus.BACKORDERED


@pytest.mark.django_db
def test_the_waiting_page_says_when_the_money_comes_back(client):
    late = late_payer(stock_product(0, slug="page"))
    Order.objects.filter(pk=late.pk).update(email="late@example.com")
    lookup = client.post(
        "/lookup", {"order_no": late.order_no, "email_or_password": "late@example.com"}
    )
    assert lookup.status_code == 302
    html = client.get(f"/o/{late.order_no}").content.decode()
    due = timezone.localtime(late.backordered_at + WINDOW)
    assert "refunded in full automatically" in html and due.strftime("%H:%M") in html


@pytest.mark.django_db(transaction=True)
def test_racing_sweeps_refund_exactly_once():
    late = late_payer(stock_product(0, slug="race"))
    waited(late, WINDOW * 2)
    results = run_concurrently(4, lambda i: backorders_refund_overdue())
    assert sorted(results) == [0, 0, 0, 1], results
    late.refresh_from_db()
    assert late.status == OrderStatus.REFUNDED
    assert automatic_refunds(late) == 1
    assert PaymentEvent.objects.filter(type="charge.refunded").count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_automatic_refund_of_one_order():
    """Whatever a future code path forgets to check: the automatic refund's history row is
    unique per order (``orderevent_one_backorder_refund``)."""
    order = late_payer(stock_product(0, slug="twice"))
    automatic = Step(OrderStatus.REFUND_REQUESTED, kind=OrderEventKind.BACKORDER_REFUND)
    order_transition_path(order=order, steps=[automatic])
    order_transition_path(
        order=order,
        steps=[
            Step(OrderStatus.ON_HOLD, kind=OrderEventKind.REFUND_FAILED),
            Step(OrderStatus.BACKORDERED),
        ],
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        order_transition_path(order=order, steps=[automatic])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.BACKORDERED


@pytest.fixture
def stripe_refunds(monkeypatch):
    def install(status: int = 200) -> StripeRefundsHTTP:
        fake = StripeRefundsHTTP(status)
        monkeypatch.setattr(stripe, "default_http_client", fake)
        return fake

    return install


@pytest.mark.django_db
@override_settings(STRIPE_SECRET_KEY="sk_test_kami", PAYMENT_PROVIDER="stripe")
def test_stripe_is_asked_once_and_its_charge_refunded_closes_the_order(client, stripe_refunds):
    fake = stripe_refunds()
    late = late_payer(stock_product(0, slug="stripe"))
    Order.objects.filter(pk=late.pk).update(payment_provider="stripe")
    waited(late, WINDOW * 2)
    assert sweep() == 1
    assert sweep() == 0
    assert len(fake.calls) == 1
    method, url, form, headers = fake.calls[0]
    assert method == "post" and url.endswith("/v1/refunds")
    assert form == {"payment_intent": late.payment_intent, "amount": str(late.amount)}
    assert headers["Idempotency-Key"] == f"refund-{late.order_no}-{late.amount}"
    late.refresh_from_db()
    assert late.status == OrderStatus.REFUND_REQUESTED  # until Stripe says it is done

    event = refund_event(late.payment_intent, amount=late.amount, amount_refunded=late.amount)
    with after_commit():
        assert post_event(client, event).status_code == 200
    late.refresh_from_db()
    assert late.status == OrderStatus.REFUNDED and automatic_refunds(late) == 1


@pytest.mark.django_db
@override_settings(STRIPE_SECRET_KEY="sk_test_kami", PAYMENT_PROVIDER="stripe")
def test_a_refund_stripe_refuses_goes_to_the_owner_and_is_never_retried(stripe_refunds):
    fake = stripe_refunds(status=400)
    product = stock_product(0, slug="refused")
    late = late_payer(product)
    Order.objects.filter(pk=late.pk).update(payment_provider="stripe")
    waited(late, WINDOW * 2)
    assert sweep() == 0
    late.refresh_from_db()
    assert late.status == OrderStatus.ON_HOLD
    assert late.events.filter(kind=OrderEventKind.REFUND_FAILED).exists()

    # The owner approves it instead; still no keys, so it waits again — and is left to them.
    with transaction.atomic():
        assert order_review_approve(order_id=late.pk, actor=None).acted
    late.refresh_from_db()
    assert late.status == OrderStatus.BACKORDERED
    waited(late, WINDOW * 2)
    assert sweep() == 0
    assert len(fake.calls) == 1 and automatic_refunds(late) == 1
