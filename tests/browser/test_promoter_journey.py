"""A promoter's journey in a real browser: sign up → share the link → a buyer pays in the
sandbox through it → the commission appears on the promoter's dashboard.

Promoter and buyer are separate browsers (separate cookie jars) behind a trusted proxy that
gives each its own client IP, so the same-IP self-referral rule does not (rightly) refuse the
sale, as it would if the promoter bought through their own link from their own machine.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from commissions.models import Attribution, LedgerEntry, Promoter, ReferralClick
from orders.models import Order, OrderStatus
from tests.factories import stock_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

PAY_URL = re.compile(r"/pay/sandbox/([^/?#]+)$")


def test_promoter_signs_up_shares_link_and_sees_the_commission(
    live_server, new_context, shot, viewport, settings
):
    settings.SITE_URL = live_server.url
    settings.TRUST_X_FORWARDED_FOR = True
    product = stock_product(4, name="Referral Deluxe", price=2500)  # 2 of 4: held

    # 1. Sign up at /promoter/join.
    promoter_ctx = new_context(viewport)
    promoter_ctx.set_extra_http_headers({"X-Forwarded-For": "198.51.100.1"})
    promoter_ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    me = promoter_ctx.new_page()
    me.goto(f"{live_server.url}/promoter/join")
    expect(me.get_by_role("heading", level=1)).to_have_text("Become a promoter")
    me.get_by_label("Username").fill("journey_promoter")
    me.get_by_label("Email").fill("journey.promoter@example.org")
    me.get_by_label("Password").fill("a-Long-pass-99")
    shot(me, "01-join")
    me.get_by_role("button", name="Join").click()
    expect(me).to_have_url(re.compile(r"/promoter/$"))
    code = Promoter.objects.get(user__username="journey_promoter").code
    expect(me.get_by_test_id("promoter-code")).to_have_text(code)
    link_box = me.get_by_test_id("ref-link")
    expect(link_box).to_have_value(f"{live_server.url}/?ref={code}")
    expect(me.locator("svg.qr")).to_be_visible()
    expect(me.get_by_test_id("no-commissions")).to_be_visible()
    me.get_by_role("button", name="Copy").click()
    expect(me.get_by_role("button", name="Copied")).to_be_visible()
    assert me.evaluate("navigator.clipboard.readText()") == f"{live_server.url}/?ref={code}"
    shot(me, "02-dashboard-empty")
    link = link_box.input_value()

    # 2. A buyer in another browser follows the link, buys and pays in the sandbox.
    buyer_ctx = new_context(viewport)
    buyer_ctx.set_extra_http_headers({"X-Forwarded-For": "203.0.113.9"})
    buyer = buyer_ctx.new_page()
    buyer.goto(link)
    buyer.get_by_test_id(f"product-{product.slug}").click()
    buyer.get_by_label(re.compile(r"^Email\b")).fill("happy.buyer@example.net")
    buyer.get_by_label("Quantity").fill("2")
    buyer.get_by_role("button", name="Buy now").click()
    expect(buyer).to_have_url(PAY_URL)
    order_no = PAY_URL.search(buyer.url)[1]
    shot(buyer, "03-buyer-pay")
    buyer.get_by_role("button", name="Pay", exact=True).click()
    expect(buyer).to_have_url(re.compile(rf"/o/{order_no}$"))
    expect(buyer.get_by_test_id("card-key")).to_have_count(2)

    order = Order.objects.get(order_no=order_no)
    assert order.status == OrderStatus.DELIVERED
    assert Attribution.objects.get(order=order).status == "attributed"
    assert ReferralClick.objects.filter(promoter__code=code).count() == 1
    assert LedgerEntry.objects.get(order=order, level=1).amount == 500  # 10% of 50.00

    # 3. The promoter's dashboard shows the sale, masked, with its commission on hold.
    me.reload()
    row = me.get_by_test_id("commission-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(order_no)
    expect(row).to_contain_text("h***@e***.net")
    expect(row).to_contain_text("5.00 USD")
    expect(row.get_by_test_id("commission-status")).to_have_text("pending")
    expect(me.get_by_test_id("balance-pending")).to_have_text("5.00 USD")
    expect(me.get_by_test_id("stat-clicks")).to_have_text("1")
    expect(me.get_by_test_id("stat-orders")).to_have_text("1")
    assert "happy.buyer" not in me.content()
    shot(me, "04-dashboard-commission")
