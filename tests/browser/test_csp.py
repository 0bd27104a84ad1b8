"""The Content-Security-Policy in a real browser: headless Chromium walks the buyer's journey,
the promoter dashboard, the owner's admin and the API docs and reports zero violations
(``securitypolicyviolation`` events and "Refused to …" console messages, collected by
``new_context``); the API docs render their operations with no request leaving the shop.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import expect

from commissions.models import Promoter
from orders.models import Order, OrderStatus, PaymentEvent
from tests.factories import stock_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

PAY_URL = re.compile(r"/pay/sandbox/([^/?#]+)$")
INLINE_PROBE = """<!doctype html><html><head><style>body{color:red}</style></head>
<body><p style="color:blue">probe</p><input id="f" onfocus="this.select()">
<script>window.inlineRan = true;</script></body></html>"""


def _wait_until_loaded(page) -> None:
    page.wait_for_load_state("load")
    page.wait_for_load_state("networkidle")


def test_the_watcher_reports_what_the_policy_refuses(live_server, new_context):
    """The detector itself: a page under Kami's policy with inline style, handler and script."""
    context = new_context("desktop")
    page = context.new_page()
    real = page.request.get(f"{live_server.url}/")
    policy = real.headers["content-security-policy"]
    page.route(
        f"{live_server.url}/csp-probe",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": policy},
            body=INLINE_PROBE,
        ),
    )
    page.goto(f"{live_server.url}/csp-probe")
    page.focus("#f")
    _wait_until_loaded(page)
    assert page.evaluate("window.inlineRan === undefined"), "an inline script ran"
    found = " | ".join(context.csp_violations)
    assert "script-src" in found and "style-src" in found, found
    context.csp_violations.clear()  # seen on purpose: not a failure of this test


def test_buyer_journey_has_no_csp_violations(live_server, new_context):
    product = stock_product(4, name="Policy Key", max_per_order=5)  # 2 of 4: within the hold share
    context = new_context("desktop")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.get_by_test_id(f"product-{product.slug}").click()
    page.get_by_label(re.compile(r"^Email\b")).fill("policy.buyer@example.com")
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(PAY_URL)
    order_no = PAY_URL.search(page.url)[1]
    page.goto(f"{live_server.url}/o/{order_no}")  # the waiting page, polling
    expect(page.locator("#order-panel")).to_have_attribute("data-status", "pending")
    page.go_back()
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/o/{order_no}$"))
    expect(page.get_by_test_id("card-key")).to_have_count(2)
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    page.goto(f"{live_server.url}/lookup")
    page.get_by_label("Order number").fill(order_no.lower())
    page.get_by_label("Email or query password").fill("policy.buyer@example.com")
    page.get_by_role("button", name="Show my order").click()
    expect(page).to_have_url(re.compile(rf"/o/{order_no}$"))
    _wait_until_loaded(page)
    assert Order.objects.get(order_no=order_no).status == OrderStatus.DELIVERED
    assert context.csp_violations == []


def test_promoter_dashboard_has_no_csp_violations(live_server, new_context):
    context = new_context("desktop")
    page = context.new_page()
    page.goto(f"{live_server.url}/promoter/join")
    page.get_by_label("Username").fill("policy_promoter")
    page.get_by_label("Email").fill("policy.promoter@example.org")
    page.get_by_label("Password").fill("a-Long-pass-99")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(r"/promoter/$"))
    code = Promoter.objects.get(user__username="policy_promoter").code
    expect(page.locator("svg.qr")).to_be_visible()
    link = page.get_by_test_id("ref-link")
    link.focus()  # selects itself (kami.js), as the onfocus attribute used to
    selected = page.evaluate(
        "() => { const f = document.activeElement; return f.value.slice(f.selectionStart, "
        "f.selectionEnd); }"
    )
    assert selected == link.input_value() and selected.endswith(f"/?ref={code}")
    page.get_by_label("Amount").fill("10.00")
    page.get_by_label("Account").fill("policy.promoter@example.org")
    page.get_by_role("button", name="Request withdrawal").click()
    _wait_until_loaded(page)
    page.get_by_role("button", name="Log out").click()
    _wait_until_loaded(page)
    assert context.csp_violations == []


def test_admin_pages_have_no_csp_violations(
    live_server, new_context, django_capture_on_commit_callbacks
):
    product = stock_product(2, name="Admin Policy Key", low_stock_threshold=5)
    buyer = Client()
    buyer.post(f"/p/{product.slug}", {"email": "admin.policy@example.com", "quantity": "1"})
    order = Order.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        buyer.post(f"/pay/sandbox/{order.order_no}")
    owner = User.objects.create_superuser("policy_owner", "owner@example.com", "owner-pass-123")
    staff = Client()
    staff.force_login(owner)
    context = new_context("desktop")
    context.add_cookies(
        [{"name": "sessionid", "value": staff.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    event = PaymentEvent.objects.first()
    for path in (
        "/admin/",
        "/admin/shop/product/",
        f"/admin/shop/product/{product.pk}/change/",
        "/admin/shop/product/add/",
        f"/admin/shop/product/{product.pk}/import-keys/",
        "/admin/orders/order/",
        f"/admin/orders/order/{order.pk}/change/",
        f"/admin/orders/paymentevent/{event.pk}/change/",
        "/admin/commissions/withdrawal/",
        "/admin/riskrules/riskrule/",
        "/admin/riskrules/revieworder/",
    ):
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        _wait_until_loaded(page)
    page.goto(live_server.url + "/admin/shop/product/")
    page.locator("#action-toggle").check()  # the changelist's own actions.js
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    assert context.csp_violations == []


def test_api_docs_render_offline_under_the_policy(live_server, new_context):
    """ninja's bundled Swagger UI from our static files: nothing is fetched from elsewhere."""
    stock_product(1, slug="docs-product")
    context = new_context("desktop")
    left_the_shop: list[str] = []

    def only_the_shop(route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            left_the_shop.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_shop)
    page = context.new_page()
    page.goto(f"{live_server.url}/api/v1/docs")
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/products").first
    expect(operation).to_be_visible()
    expect(page.locator(".opblock")).not_to_have_count(0)
    page.locator("#operations-catalog-shop_api_list_products").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".responses-wrapper .live-responses-table")).to_contain_text("200")
    expect(page.locator(".responses-wrapper")).to_contain_text("docs-product")
    _wait_until_loaded(page)
    assert left_the_shop == []
    assert context.csp_violations == []
