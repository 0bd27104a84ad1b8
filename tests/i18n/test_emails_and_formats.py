"""The delivery email speaks the order's language; money, dates and product texts follow the
language served."""

from __future__ import annotations

from datetime import date

import pytest
from django.core import mail
from django.template import engines
from django.utils import translation

from core.money import format_money
from orders.models import Order
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}


def buy(client, capture, **headers) -> Order:
    stock_product(2, slug="game", name="Great Game", name_zh="好游戏")
    client.post("/p/game", {"email": "me@example.com", "quantity": "1"}, **headers)
    order = Order.objects.get()
    with capture(execute=True):
        client.post(f"/pay/sandbox/{order.order_no}")  # no language header: the worker's case
    order.refresh_from_db()
    return order


def test_the_email_is_in_the_order_language_whoever_sends_it(
    client, django_capture_on_commit_callbacks
):
    order = buy(client, django_capture_on_commit_callbacks, **ZH)
    assert order.language == "zh-hans"
    [email] = mail.outbox
    assert email.subject == f"你的 好游戏 卡密 — 订单 {order.order_no}"
    assert "感谢购买" in email.body and "你的卡密：" in email.body and "game-KEY-0" in email.body
    html = email.alternatives[0][0]
    assert "再次查看订单" in html and "Thank you" not in html
    assert translation.get_language() == "en"  # the override did not leak


def test_an_english_buyer_gets_the_english_email(client, django_capture_on_commit_callbacks):
    order = buy(client, django_capture_on_commit_callbacks, HTTP_ACCEPT_LANGUAGE="en-GB")
    assert order.language == "en"
    [email] = mail.outbox
    assert email.subject == f"Your Great Game key(s) — order {order.order_no}"
    assert "Thank you for your order" in email.body and "感谢" not in email.body


def test_the_api_checkout_stores_the_language_too(client):
    stock_product(1, slug="game")
    response = client.post(
        "/api/v1/orders",
        {"product": "game", "quantity": 1, "email": "me@example.com"},
        content_type="application/json",
        **ZH,
    )
    assert response.status_code == 201
    assert Order.objects.get().language == "zh-hans"


@pytest.mark.parametrize(
    ("language", "minor", "currency", "shown"),
    [
        ("en", 990, "USD", "9.90 USD"),
        ("en", 123456789, "USD", "1,234,567.89 USD"),
        ("en", 500, "JPY", "500 JPY"),
        ("zh-hans", 990, "USD", "US$9.90"),
        ("zh-hans", 123456, "CNY", "¥1,234.56"),
        ("zh-hans", 1234500, "JPY", "JP¥1,234,500"),
        ("zh-hans", 1234, "KWD", "1.234 KWD"),
    ],
)
def test_money_is_formatted_for_the_language(language, minor, currency, shown):
    with translation.override(language):
        assert format_money(minor, currency) == shown


@pytest.mark.parametrize(("language", "shown"), [("en", "2025-03-01"), ("zh-hans", "2025年3月1日")])
def test_short_dates_are_formatted_for_the_language(language, shown):
    template = engines["django"].from_string('{{ day|date:"SHORT_DATE_FORMAT" }}')
    with translation.override(language):
        assert template.render({"day": date(2025, 3, 1)}) == shown


def test_product_chinese_texts_with_fallback(client):
    stock_product(
        1, slug="zh", name="Gift Card", name_zh="礼品卡", description_zh="<p>中文说明</p>"
    )
    stock_product(1, slug="plain", name="Plain Card", description="<p>English only</p>")
    chinese = client.get("/", **ZH).content.decode()
    assert "礼品卡" in chinese and "Gift Card" not in chinese
    assert "Plain Card" in chinese  # no Chinese name: the default one
    page = client.get("/p/zh", **ZH).content.decode()
    assert "<h1>礼品卡</h1>" in page and "中文说明" in page
    assert "English only" in client.get("/p/plain", **ZH).content.decode()
    english = client.get("/p/zh").content.decode()
    assert "<h1>Gift Card</h1>" in english and "礼品卡" not in english


def test_the_admin_edits_the_chinese_texts(admin_client):
    product = stock_product(0, slug="game", name="Game")
    html = admin_client.get(f"/admin/shop/product/{product.pk}/change/").content.decode()
    assert 'name="name_zh"' in html and 'name="description_zh"' in html
