"""Shared fixtures: promoters, and orders that go through the real checkout and webhook."""

from __future__ import annotations

import pytest

from orders.models import Order
from orders.services import CheckoutRequest, order_create
from tests.commissions.factories import PromoterFactory
from tests.factories import stock_product
from tests.stripe_helpers import completed_event, post_event


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Post a signed event and run what it enqueues after commit, as the worker does."""

    def _post(event):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(client, event)
        assert response.status_code == 200, response.content
        return response

    return _post


@pytest.fixture
def product():
    return stock_product(50, slug="game", price=10000)  # 100.00: round numbers for rates


@pytest.fixture
def upline():
    return PromoterFactory(code="UP")


@pytest.fixture
def promoter(upline):
    return PromoterFactory(code="ALICE", upline=upline)


@pytest.fixture
def checkout(product):
    """``checkout(ref="ALICE", quantity=1, email=…, ip=…)`` → a pending order."""
    counter = iter(range(10_000))

    def _checkout(*, ref: str = "", quantity: int = 1, email: str = "", ip: str = "", **kw):
        n = next(counter)
        return order_create(
            req=CheckoutRequest(
                product=kw.pop("product_slug", product.slug),
                quantity=quantity,
                email=email or f"buyer{n}@example.net",
                ref=ref,
                client_ip=ip or f"198.51.100.{(n % 250) + 1}",
                **kw,
            )
        )

    return _checkout


@pytest.fixture
def sell(checkout, deliver):
    """Checkout with ``ref`` and pay through the signed webhook; returns the delivered order."""

    def _sell(*, ref: str = "ALICE", payment_intent: str | None = None, **kw) -> Order:
        order = checkout(ref=ref, **kw)
        deliver(completed_event(order, payment_intent=payment_intent))
        order.refresh_from_db()
        return order

    return _sell
