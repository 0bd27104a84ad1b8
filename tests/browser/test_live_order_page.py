"""The order page flips to the keys when the delivery is pushed over its WebSocket: no reload,
and no polling request while it waits (real Chromium against ``manage.py serve``)."""

from __future__ import annotations

import urllib.request

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from playwright.sync_api import expect

from orders.access import COOKIE, grant_access
from orders.payments.stripe_events import build_event, checkout_session_object, encode, sign_payload
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def buyer_cookie(server, order_no: str) -> dict:
    """The browser that checked out holds this grant (``orders.access.grant_access``)."""
    response = HttpResponse()
    grant_access(RequestFactory().get("/"), response, order_no)
    return {"name": COOKIE, "value": response.cookies[COOKIE].value, "url": server.url}


def pay_by_webhook(server, order) -> None:
    payload = encode(build_event("checkout.session.completed", checkout_session_object(order)))
    request = urllib.request.Request(  # noqa: S310 - the test server's own http:// URL
        server.url + "/payments/stripe/webhook",
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def test_the_order_page_shows_the_keys_when_the_delivery_is_pushed(
    asgi_server, new_context, shot, viewport
):
    product = stock_product(1, name="Pushed Key")
    order = OrderFactory(product=product)
    context = new_context(viewport)
    context.add_cookies([buyer_cookie(asgi_server, order.order_no)])
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    page.goto(f"{asgi_server.url}/o/{order.order_no}")
    panel = page.locator("#order-panel")
    expect(panel).to_have_attribute("data-live", "socket")
    expect(page.get_by_text("Waiting for your payment")).to_be_visible()
    shot(page, "01-waiting-on-the-socket")
    # Longer than two polling intervals (0.7 s): a polling page would have asked by now.
    page.wait_for_timeout(1600)
    assert not [url for url in requests if url.endswith("/panel")], requests

    pay_by_webhook(asgi_server, order)
    expect(page.get_by_test_id("card-key")).to_have_text(f"{product.slug}-KEY-0")
    shot(page, "02-keys-pushed")

    panel_reads = [url for url in requests if url.endswith("/panel")]
    assert len(panel_reads) == 1, requests  # the one read the "delivered" message asked for
    assert sockets == [f"ws://127.0.0.1:{asgi_server.port}/ws/orders/{order.order_no}"]
    assert len([url for url in navigations if "/o/" in url]) == 1, navigations  # no reload
    assert panel.get_attribute("data-status") == "delivered"
    assert panel.get_attribute("data-live") == "socket"  # never fell back to polling
