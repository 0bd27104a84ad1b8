"""A Chinese buyer (a phone set to zh-CN) from the catalog to the key, in Chinese, switching
the language on the page; under the strict CSP (the context fails the test on a violation).

After the key, the buyer reports a problem through the order page's ticket form, in Chinese,
and sees the ticket waiting for the shop.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from orders.support.models import Ticket
from tests.factories import stock_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

PAY_URL = re.compile(r"/pay/sandbox/([^/?#]+)$")


def test_a_chinese_buyer_from_the_catalog_to_the_key(live_server, new_context, shot, viewport):
    product = stock_product(3, slug="vip", name="VIP Month", name_zh="VIP 月卡", price=3000)
    buyer = new_context(viewport, locale="zh-CN").new_page()

    buyer.goto(live_server.url + "/")
    expect(buyer.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(buyer.get_by_test_id("product-vip")).to_contain_text("VIP 月卡")
    expect(buyer.get_by_test_id("product-vip")).to_contain_text("US$30.00")
    shot(buyer, "01-catalog-zh")

    buyer.get_by_test_id("product-vip").click()
    expect(buyer.get_by_role("heading", level=1)).to_have_text("VIP 月卡")
    buyer.get_by_label(re.compile(r"^邮箱")).fill("maimai@example.com")
    buyer.get_by_label("数量").fill("1")
    shot(buyer, "02-product-zh")
    buyer.get_by_role("button", name="立即购买").click()

    expect(buyer).to_have_url(PAY_URL)
    expect(buyer.get_by_role("heading", level=1)).to_have_text("支付 US$30.00")
    shot(buyer, "03-pay-zh")
    buyer.get_by_role("button", name="付款", exact=True).click()

    order = Order.objects.get()
    expect(buyer).to_have_url(re.compile(rf"/o/{order.order_no}$"))
    expect(buyer.get_by_role("heading", name="你的卡密")).to_be_visible()
    key = buyer.get_by_test_id("card-key")
    expect(key).to_have_count(1)
    assert key.inner_text().strip().startswith(f"{product.slug}-KEY-")
    expect(buyer.get_by_role("button", name="复制")).to_be_visible()
    shot(buyer, "04-key-zh")
    order.refresh_from_db()
    assert (order.status, order.language) == (OrderStatus.DELIVERED, "zh-hans")

    # A ticket from the same page: "I did not get my key", in Chinese.
    expect(buyer.get_by_role("heading", name="订单遇到问题？")).to_be_visible()
    buyer.get_by_label("遇到了什么问题？").select_option("key_missing")
    buyer.get_by_label("详细说明").fill("邮箱里没有收到卡密")
    buyer.get_by_role("button", name="提交给店铺").click()
    expect(buyer).to_have_url(re.compile(rf"/o/{order.order_no}"))
    ticket = buyer.get_by_test_id("ticket")
    expect(ticket).to_have_count(1)
    expect(ticket).to_contain_text("等待店铺回复")
    expect(ticket).to_contain_text("邮箱里没有收到卡密")
    shot(buyer, "04b-ticket-zh")
    (opened,) = Ticket.objects.filter(order=order)
    assert (opened.kind, opened.status) == ("key_missing", "open")

    # The switch: English on the same page, kept (a cookie) over the phone's zh-CN.
    buyer.get_by_test_id("lang-en").click()
    expect(buyer).to_have_url(re.compile(rf"/o/{order.order_no}$"))
    expect(buyer.locator("html")).to_have_attribute("lang", "en")
    expect(buyer.get_by_role("heading", name="Your key")).to_be_visible()
    expect(buyer.get_by_test_id("card-key")).to_have_count(1)
    buyer.goto(live_server.url + "/")
    expect(buyer.get_by_test_id("product-vip")).to_contain_text("VIP Month")
    shot(buyer, "05-switched-en")

    buyer.get_by_test_id("lang-zh-hans").click()
    expect(buyer.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(buyer.get_by_test_id("product-vip")).to_contain_text("VIP 月卡")
