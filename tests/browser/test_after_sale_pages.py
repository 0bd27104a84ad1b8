"""The buyer's pages from a walk on a phone (issue 12), in real Chromium under the strict CSP:
"copy all" on an order with several keys, the hold's countdown on the waiting page, and the
product page's total for the chosen quantity."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from playwright.sync_api import expect

from orders.access import COOKIE, grant_access
from orders.delivery import order_deliver
from orders.models import OrderStatus
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def buyer_cookie(url: str, order_no: str) -> dict:
    response = HttpResponse()
    grant_access(RequestFactory().get("/"), response, order_no)
    return {"name": COOKIE, "value": response.cookies[COOKIE].value, "url": url}


def test_copy_all_copies_every_key(live_server, new_context, viewport):
    from django.db import transaction
    from django.utils import timezone

    product = stock_product(3, slug="multi")
    order = OrderFactory(product=product, quantity=3)
    with transaction.atomic():
        order.status = OrderStatus.PAID
        order.paid_at = timezone.now()
        order.save()
        order_deliver(order=order)
    context = new_context(viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    context.add_cookies([buyer_cookie(live_server.url, order.order_no)])
    page = context.new_page()
    page.goto(f"{live_server.url}/o/{order.order_no}")
    button = page.get_by_test_id("copy-all")
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.splitlines() == ["multi-KEY-0", "multi-KEY-1", "multi-KEY-2"]
    expect(button).to_have_text("Copy all")
    href = page.get_by_test_id("keys-txt").get_attribute("href")
    assert href == f"/o/{order.order_no}/keys.txt"


def test_the_waiting_page_counts_the_hold_down(live_server, new_context, viewport):
    order = OrderFactory(product=stock_product(1, slug="wait"))
    context = new_context(viewport)
    context.add_cookies([buyer_cookie(live_server.url, order.order_no)])
    page = context.new_page()
    page.goto(f"{live_server.url}/o/{order.order_no}")
    clock = page.get_by_test_id("hold-countdown")
    expect(clock).to_have_text(re.compile(r"^\d+:\d\d left$"))
    first = int(clock.get_attribute("data-seconds-left"))
    page.wait_for_function(
        "s => +document.querySelector('[data-countdown-until]').dataset.secondsLeft < s", arg=first
    )


def test_the_product_page_shows_the_total_for_the_quantity(live_server, new_context, viewport):
    stock_product(5, slug="tot", price=1250, currency="USD")
    page = new_context(viewport).new_page()
    page.goto(f"{live_server.url}/p/tot")
    total = page.get_by_test_id("order-total")
    expect(total).to_have_text("12.50 USD")
    page.locator("input[name=quantity]").fill("3")
    expect(total).to_have_text("37.50 USD")
