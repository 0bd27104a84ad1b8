"""Every buyer and promoter page in English and Simplified Chinese (contract §8): chosen from
Accept-Language, overridden by the switch's cookie, English by default; ``<html lang>`` names
the language served."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from commissions.models import Withdrawal
from core.lockout import lockout_response
from orders.models import Order
from tests.commissions.factories import PromoterFactory
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}


def html_lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no <html lang>"
    return match.group(1)


@pytest.fixture
def pending(client):
    stock_product(3, slug="game", name="Great Game", price=12345)
    response = client.post("/p/game", {"email": "me@example.com", "quantity": "1"}, **ZH)
    assert response.status_code == 302
    return Order.objects.get()


@pytest.fixture
def delivered(client, pending, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/pay/sandbox/{pending.order_no}")
    pending.refresh_from_db()
    return pending


@pytest.fixture
def promoter_client(client):
    promoter = PromoterFactory(code="ALICE")
    client.force_login(promoter.user)
    return client, promoter


# (path builder, an English text, its Chinese)
BUYER_PAGES = [
    ("catalog", lambda o: "/", "left</span>", "仅剩 2 件"),
    ("product", lambda o: "/p/game", "Buy now", "立即购买"),
    ("product form", lambda o: "/p/game", "Query password", "查询密码"),
    ("waiting page", lambda o: f"/o/{o.order_no}", "Waiting for your payment", "等待付款"),
    ("order panel", lambda o: f"/o/{o.order_no}/panel", "Pay now (sandbox)", "立即付款（沙盒）"),
    ("sandbox pay", lambda o: f"/pay/sandbox/{o.order_no}", "Demo payment", "演示付款"),
    ("lookup", lambda o: "/lookup", "Order number", "订单号"),
    ("promoter login", lambda o: "/promoter/login", "Promoter login", "推广员登录"),
    ("promoter join", lambda o: "/promoter/join", "Become a promoter", "成为推广员"),
]


@pytest.mark.parametrize(("name", "path", "english", "chinese"), BUYER_PAGES)
def test_buyer_page_in_both_languages(client, pending, name, path, english, chinese):
    url = path(pending)
    chinese_html = client.get(url, **ZH).content.decode()
    assert chinese in chinese_html and english not in chinese_html
    if "/panel" not in url:  # the panel is a fragment of the order page
        assert html_lang(chinese_html) == "zh-hans"
        assert "查询订单" in chinese_html  # the shared header
    english_html = Client().get(url).content.decode() if "/o/" not in url else None
    if english_html is None:  # the order's pages need this browser's access cookie
        english_html = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert english in english_html and chinese not in english_html
    if "/panel" not in url:
        assert html_lang(english_html) == "en"


def test_delivered_order_page_in_chinese(client, delivered):
    html = client.get(f"/o/{delivered.order_no}", **ZH).content.decode()
    assert html_lang(html) == "zh-hans"
    assert "你的卡密" in html and "复制" in html and "卡密就显示在本页上方" in html
    assert "US$123.45" in html  # the order's total, for a Chinese reader


def test_promoter_dashboard_and_withdrawal_in_chinese(promoter_client, settings):
    client, promoter = promoter_client
    html = client.get("/promoter/", **ZH).content.decode()
    assert html_lang(html) == "zh-hans"
    assert "推广员中心" in html and "你的推广链接" in html and "申请提现" in html
    assert "Request withdrawal" not in html
    assert client.get("/promoter/").content.decode().count("Request withdrawal") == 1


def test_withdrawal_page_and_form_errors_in_chinese(promoter_client):
    client, promoter = promoter_client
    withdrawal = Withdrawal.objects.create(
        promoter=promoter, amount=5000, currency="USD", method="alipay", account="1"
    )
    html = client.get(f"/promoter/withdrawals/{withdrawal.pk}", **ZH).content.decode()
    assert html_lang(html) == "zh-hans"
    assert "支付宝" in html and "已申请" in html and "返回推广员中心" in html
    # A form error the promoter reads is translated too (the form's own validation).
    bad = client.post(
        "/promoter/withdraw", {"amount": "abc", "method": "alipay", "account": "1"}, **ZH
    )
    assert bad.status_code == 422 and "请输入金额，例如 12.50。" in bad.content.decode()


def test_checkout_error_on_the_product_page_is_translated(client):
    stock_product(2, slug="game")
    response = client.post("/p/game", {"email": "bad", "quantity": "1"}, **ZH)
    assert response.status_code == 422
    assert "请输入有效的邮箱：卡密会发送到这里。" in response.content.decode()
    assert Order.objects.count() == 0


def test_lookup_failure_is_translated(client):
    response = client.post(
        "/lookup", {"order_no": "K0NOPE", "email_or_password": "x@example.com"}, **ZH
    )
    assert response.status_code == 404
    assert "订单号与邮箱或查询密码不匹配" in response.content.decode()


def test_lockout_page_in_chinese(rf):
    from django.utils import translation

    request = rf.get("/promoter/login")
    with translation.override("zh-hans"):
        request.LANGUAGE_CODE = "zh-hans"
        html = lockout_response(request, credentials={"username": "x"}).content.decode()
    assert "登录失败次数过多" in html and 'lang="zh-hans"' in html


@pytest.mark.parametrize(
    ("header", "served"),
    [
        ("zh-CN", "zh-hans"),
        ("zh-cn,en;q=0.5", "zh-hans"),
        ("zh", "zh-hans"),
        ("zh-Hans", "zh-hans"),
        ("zh-TW", "zh-hans"),  # the one Chinese on offer: closer for them than English
        ("en-US,en;q=0.9", "en"),
        ("fr-FR", "en"),
        ("", "en"),
    ],
)
def test_accept_language_decides_without_a_cookie(client, header, served):
    response = client.get("/lookup", HTTP_ACCEPT_LANGUAGE=header)
    assert html_lang(response.content.decode()) == served
    assert response["Content-Language"] == served


def test_the_switch_sets_a_cookie_that_overrides_accept_language(client):
    page = client.get("/lookup", **ZH).content.decode()
    # The switch is a plain form (no script under the CSP) posting to set_language with CSRF.
    form = re.search(r'<form class="lang-switch" method="post" action="([^"]+)">', page)
    assert form and form.group(1) == reverse("set_language")
    assert 'name="csrfmiddlewaretoken"' in page and 'value="en"' in page
    response = client.post(reverse("set_language"), {"language": "en", "next": "/lookup"}, **ZH)
    assert response.status_code == 302 and response["Location"] == "/lookup"
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "en" and cookie["httponly"] and cookie["samesite"] == "Lax"
    again = client.get("/lookup", **ZH).content.decode()
    assert html_lang(again) == "en" and "Find my order" in again
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert html_lang(client.get("/lookup").content.decode()) == "zh-hans"


def test_the_switch_refuses_a_foreign_next_and_an_unknown_language(client):
    response = client.post(
        reverse("set_language"), {"language": "xx", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_switch_needs_csrf():
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert response.status_code == 403


def test_the_admin_follows_djangos_chinese(admin_client):
    html = admin_client.get("/admin/", **ZH).content.decode()
    assert html_lang(html) == "zh-hans"
    assert "站点管理" in html or "注销" in html or "修改密码" in html


def test_locale_middleware_sits_after_sessions_and_before_common():
    middleware = settings.MIDDLEWARE
    locale = middleware.index("django.middleware.locale.LocaleMiddleware")
    assert middleware.index("django.contrib.sessions.middleware.SessionMiddleware") < locale
    assert locale < middleware.index("django.middleware.common.CommonMiddleware")
