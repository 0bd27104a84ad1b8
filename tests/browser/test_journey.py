"""A buyer's journey in a real browser: catalog → product → checkout → sandbox pay → keys.

Runs against ``live_server`` (a real HTTP server on a transactional PostgreSQL database) in
headless Chromium at a phone and a desktop viewport; screenshots of every step land in
``var/test-artifacts/``.
"""

from __future__ import annotations

import re
import urllib.request

import pytest
from django.conf import settings
from playwright.sync_api import expect

from cardpool.models import CardKey
from orders.models import Order, OrderStatus
from orders.payments.stripe_events import build_event, checkout_session_object, encode, sign_payload
from tests.factories import stock_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

EMAIL = "Buyer.Journey@example.com"
# Plain groups: Playwright hands these patterns to JavaScript, which has no (?P<name>…).
PAY_URL = re.compile(r"/pay/sandbox/([^/?#]+)$")


def _keys_of(product) -> set[str]:
    """The plaintexts ``stock_product`` gave the product's keys."""
    count = CardKey.objects.filter(product=product).count()
    return {f"{product.slug}-KEY-{i}" for i in range(count)}


def _checkout(page, live_server, product, *, quantity: int, shot) -> str:
    """From the catalog, buy ``quantity`` of ``product``; return the order number from the
    sandbox pay page the form lands on."""
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name=product.category.name)).to_be_visible()
    shot(page, "01-catalog")
    page.get_by_test_id(f"product-{product.slug}").click()
    expect(page).to_have_url(re.compile(rf"/p/{product.slug}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(product.name)
    page.get_by_label(re.compile(r"^Email\b")).fill(EMAIL)
    page.get_by_label("Quantity").fill(str(quantity))
    shot(page, "02-product-filled")
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(PAY_URL)
    match = PAY_URL.search(page.url)
    assert match is not None
    return match[1]


def _deliver_by_webhook(live_server, order_no: str) -> None:
    """Pay ``order_no`` the way Stripe would: a signed event POSTed to the webhook."""
    order = Order.objects.get(order_no=order_no)
    payload = encode(build_event("checkout.session.completed", checkout_session_object(order)))
    request = urllib.request.Request(  # noqa: S310 - the live server's own http:// URL
        live_server.url + "/payments/stripe/webhook",
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200, response.read()


def test_buy_pay_and_see_keys_only_in_the_buying_browser(live_server, new_context, shot, viewport):
    product = stock_product(4, name="Game Key Deluxe", max_per_order=5)  # 2 of 4: held
    all_keys = _keys_of(product)
    buyer = new_context(viewport).new_page()

    order_no = _checkout(buyer, live_server, product, quantity=2, shot=shot)
    expect(buyer.get_by_role("heading", level=1)).to_contain_text("Pay")
    expect(buyer.get_by_text(order_no)).to_be_visible()
    assert Order.objects.get(order_no=order_no).status == OrderStatus.PENDING
    shot(buyer, "03-sandbox-pay")

    buyer.get_by_role("button", name="Pay", exact=True).click()
    expect(buyer).to_have_url(re.compile(rf"/o/{order_no}$"))
    keys = buyer.get_by_test_id("card-key")
    expect(keys).to_have_count(2)
    shown = [text.strip() for text in keys.all_inner_texts()]
    shot(buyer, "04-order-delivered")

    assert len(set(shown)) == 2, shown
    assert set(shown) <= all_keys, f"{shown} are not keys of {product.slug}: {all_keys}"
    order = Order.objects.get(order_no=order_no)
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at is not None
    expect(buyer.locator("#order-panel")).to_have_attribute("aria-live", "polite")

    # Someone else with the link (a fresh browser: no cookie) sees only the lookup form.
    stranger = new_context(viewport).new_page()
    response = stranger.goto(f"{live_server.url}/o/{order_no}")
    assert response is not None and response.ok
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Find my order")
    expect(stranger.get_by_test_id("card-key")).to_have_count(0)
    page_text = stranger.content()
    assert not any(key in page_text for key in all_keys), "a key leaked to a stranger"
    expect(stranger.get_by_label("Order number")).to_have_value(order_no)
    shot(stranger, "05-stranger-lookup")

    # Proving the email (any case) unlocks the order in that browser too, even with the
    # order number retyped in lower case.
    stranger.get_by_label("Order number").fill(f" {order_no.lower()} ")
    stranger.get_by_label("Email or query password").fill(EMAIL.upper())
    stranger.get_by_role("button", name="Show my order").click()
    expect(stranger).to_have_url(re.compile(rf"/o/{order_no}$"))
    expect(stranger.get_by_test_id("card-key")).to_have_count(2)
    assert sorted(t.strip() for t in stranger.get_by_test_id("card-key").all_inner_texts()) == (
        sorted(shown)
    )
    shot(stranger, "06-stranger-after-lookup")


def test_order_page_shows_keys_by_itself_once_paid(live_server, new_context, shot, viewport):
    product = stock_product(2, name="Live Update Key")
    all_keys = _keys_of(product)
    buyer = new_context(viewport).new_page()
    order_no = _checkout(buyer, live_server, product, quantity=1, shot=shot)

    # Leave the pay page unpaid and open the order page: it waits.
    buyer.goto(f"{live_server.url}/o/{order_no}")
    panel = buyer.locator("#order-panel")
    expect(panel).to_have_attribute("data-status", "pending")
    expect(panel).to_contain_text("Waiting for your payment")
    expect(buyer.get_by_test_id("card-key")).to_have_count(0)
    shot(buyer, "03-order-pending")

    navigations: list[str] = []
    buyer.on("framenavigated", lambda frame: navigations.append(frame.url))
    buyer.evaluate("window.__kamiSamePage = true")

    _deliver_by_webhook(live_server, order_no)
    assert Order.objects.get(order_no=order_no).status == OrderStatus.DELIVERED

    key = buyer.get_by_test_id("card-key")
    expect(key).to_have_count(1, timeout=15_000)
    assert key.inner_text().strip() in all_keys
    expect(panel).to_have_attribute("data-status", "delivered")
    assert buyer.evaluate("window.__kamiSamePage === true"), "the page was reloaded"
    assert navigations == [], f"the page navigated: {navigations}"
    shot(buyer, "04-order-delivered-live")


def test_form_errors_are_shown_and_keep_the_input(live_server, new_context, shot, viewport):
    product = stock_product(3, name="Error Case Key", max_per_order=2)
    page = new_context(viewport).new_page()
    page.goto(f"{live_server.url}/p/{product.slug}")

    # The browser would refuse these itself; drop its checks to reach the server's.
    page.evaluate(
        """() => {
            const email = document.querySelector('input[name=email]');
            email.type = 'text';
            email.removeAttribute('required');
        }"""
    )
    page.get_by_label(re.compile(r"^Email\b")).fill("not-an-email")
    page.get_by_role("button", name="Buy now").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("valid email")
    expect(page.get_by_label(re.compile(r"^Email\b"))).to_have_value("not-an-email")
    shot(page, "01-product-invalid-email")

    page.evaluate("document.querySelector('input[name=quantity]').removeAttribute('max')")
    page.get_by_label(re.compile(r"^Email\b")).fill(EMAIL)
    page.get_by_label("Quantity").fill("3")
    page.get_by_role("button", name="Buy now").click()
    expect(page.get_by_role("alert")).to_contain_text("At most 2 per order")
    expect(page.get_by_label("Quantity")).to_have_value("3")
    shot(page, "02-product-too-many")
    assert not Order.objects.exists()

    page.goto(f"{live_server.url}/lookup")
    page.get_by_label("Order number").fill("K-NOPE-0000")
    page.get_by_label("Email or query password").fill(EMAIL)
    page.get_by_role("button", name="Show my order").click()
    expect(page.get_by_role("alert")).to_contain_text("No order matches")
    expect(page.get_by_label("Order number")).to_have_value("K-NOPE-0000")
    shot(page, "03-lookup-error")
