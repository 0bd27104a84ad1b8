"""Starting a Stripe Checkout Session. Only the outbound HTTP call to Stripe is stubbed."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import stripe
from django.test import override_settings

from orders.models import Order, OrderStatus
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


class RecordingStripeHTTP(stripe.HTTPClient):
    """Answers Stripe API calls locally, like Stripe would, and remembers what was sent."""

    name = "recording"

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []
        self.status = status

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        form = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.calls.append((method, url, form))
        if self.status != 200:
            body = {"error": {"type": "api_error", "message": "Stripe is down"}}
            return json.dumps(body), self.status, {}
        session = {
            "id": "cs_test_123",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_123",
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {"order_no": form.get("metadata[order_no]")},
        }
        return json.dumps(session), 200, {}

    def close(self):
        pass


@pytest.fixture
def stripe_http(monkeypatch):
    def install(status: int = 200) -> RecordingStripeHTTP:
        fake = RecordingStripeHTTP(status)
        monkeypatch.setattr(stripe, "default_http_client", fake)
        return fake

    return install


@override_settings(STRIPE_SECRET_KEY="sk_test_kami", PAYMENT_PROVIDER="stripe")
def test_checkout_session_carries_order_no_and_alipay_wechat_for_cny(client, stripe_http):
    fake = stripe_http()
    stock_product(2, slug="p", currency="CNY", price=6800)
    response = client.post(
        "/api/v1/orders",
        {"product": "p", "quantity": 1, "email": "a@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["pay_url"] == "https://checkout.stripe.com/c/pay/cs_test_123"
    method, url, form = fake.calls[0]
    assert method == "post" and url.endswith("/v1/checkout/sessions")
    assert form["client_reference_id"] == body["order_no"]
    assert form["metadata[order_no]"] == body["order_no"]
    assert form["line_items[0][price_data][unit_amount]"] == "6800"
    assert form["line_items[0][price_data][currency]"] == "cny"
    methods = {v for k, v in form.items() if k.startswith("payment_method_types")}
    assert methods == {"card", "alipay", "wechat_pay"}
    order = Order.objects.get(order_no=body["order_no"])
    assert order.checkout_session_id == "cs_test_123" and order.payment_provider == "stripe"


@override_settings(STRIPE_SECRET_KEY="sk_test_kami", PAYMENT_PROVIDER="stripe")
def test_stripe_failure_cancels_the_order_and_releases_the_hold(client, stripe_http):
    stripe_http(status=500)
    stock_product(1, slug="p")
    response = client.post(
        "/api/v1/orders",
        {"product": "p", "quantity": 1, "email": "a@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 502
    assert response.json()["code"] == "payment_provider_error"
    assert Order.objects.get().status == OrderStatus.CANCELLED
    assert client.get("/api/v1/products/p").json()["stock"] == 1


@override_settings(SANDBOX_PAYMENTS_ENABLED=False)
def test_no_provider_in_production_refuses_checkout(client):
    stock_product(1, slug="p")
    response = client.post(
        "/api/v1/orders",
        {"product": "p", "quantity": 1, "email": "a@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 503 and response.json()["code"] == "payments_unavailable"
    assert client.get("/pay/sandbox/whatever").status_code == 404


@pytest.mark.parametrize("state", ["lapsed", "expired", "cancelled"])
def test_the_sandbox_does_not_pay_an_order_whose_window_closed(client, state):
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import OrderStatus, PaymentEvent
    from tests.factories import OrderFactory, stock_product

    lapsed = timezone.now() - timedelta(minutes=1)
    status = {"lapsed": "pending", "expired": "expired", "cancelled": "cancelled"}[state]
    order = OrderFactory(product=stock_product(1, slug="sb"), status=status, hold_expires_at=lapsed)
    page = client.get(f"/pay/sandbox/{order.order_no}")
    assert page.status_code == 200 and 'id="sandbox-pay"' not in page.content.decode()
    response = client.post(f"/pay/sandbox/{order.order_no}")
    assert response.status_code == 302
    assert not PaymentEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == status and order.status != OrderStatus.DELIVERED
