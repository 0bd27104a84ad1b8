"""A buyer without a hold, in a real browser: told before paying that keys go to whoever pays
first, then paying first and getting the key nobody held (``orders.holds``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from tests.factories import OrderFactory, stock_product

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def test_a_buyer_without_a_hold_is_told_then_pays_first_and_gets_the_key(
    live_server, new_context, shot, viewport
):
    product = stock_product(2, name="Last Two Keys")
    holder = OrderFactory(product=product)  # someone paying now holds the share (1 of 2)
    page = new_context(viewport).new_page()
    page.goto(f"{live_server.url}/p/{product.slug}")
    expect(page.get_by_text("Sold out")).to_have_count(0)
    page.get_by_label(re.compile(r"^Email\b")).fill("second@example.com")
    page.get_by_role("button", name="Buy now").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("No keys could be held for you")
    expect(page.get_by_text("Keys go to whoever pays first.")).to_be_visible()
    expect(page.get_by_text("1 key is held by nobody at this moment.")).to_be_visible()
    shot(page, "01-no-hold-before-paying")
    order = Order.objects.exclude(pk=holder.pk).get()
    assert not order.holds_keys

    page.get_by_test_id("pay").click()
    expect(page).to_have_url(re.compile(rf"/pay/sandbox/{order.order_no}$"))
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/o/{order.order_no}$"))
    expect(page.get_by_test_id("card-key")).to_have_count(1)
    shot(page, "02-paid-first-delivered")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert Order.objects.get(pk=holder.pk).keys.filter(status="reserved").count() == 1
