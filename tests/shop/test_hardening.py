"""Issue #9 through the whole stack: NUL bytes are 400 (never 500), bodies over 1 MB are 413
except the admin key import, API writes must be JSON (415), and the text email is not escaped."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.urls import reverse

from cardpool.crypto import encrypt_secret, fingerprint
from cardpool.models import CardKey
from orders.models import Order
from tests.factories import OrderFactory, ProductFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ORDER = {"product": "p", "quantity": 1, "email": "buyer@example.com"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/x%00",
        "/o/ABC%00",
        "/o/ABC%00/panel",
        "/api/v1/orders/X?email=a%00b",
        "/api/v1/orders/X%00?email=a@example.com",
        "/?ref=A%00",
        "/lookup?order_no=%00",
        "/p/p?ref=%00",
        "/promoter/?x=%00",
    ],
)
def test_nul_in_address_is_400(client, path):
    stock_product(1, slug="p")
    response = client.get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.json()["code"] == "invalid"


def test_nul_in_token_username_is_400(client):
    response = client.post(
        "/api/v1/auth/token",
        json.dumps({"username": "ad\u0000min", "password": "x"}),
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_nul_in_order_and_lookup_bodies_is_400(client):
    stock_product(1, slug="p")
    response = client.post(
        "/api/v1/orders", ORDER | {"email": "a\u0000@example.com"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert client.post("/lookup", {"order_no": "A\x00", "email": "a@b.c"}).status_code == 400
    assert not Order.objects.exists()


def test_two_megabyte_api_body_is_413(client):
    stock_product(1, slug="p")
    body = json.dumps(ORDER | {"pad": "x" * (2 * 1024 * 1024)})
    response = client.post("/api/v1/orders", body, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Order.objects.exists()


def test_two_megabyte_form_post_is_413(client):
    response = client.post("/lookup", {"order_no": "A", "email": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


def test_admin_import_of_a_big_paste_still_works(admin_client):
    product = ProductFactory()
    text = "\n".join(f"BIG-{i:07d}-{'k' * 20}" for i in range(100_000))
    assert len(text) > 3 * 1024 * 1024
    url = reverse("admin:shop_product_import_keys", args=[product.pk])
    response = admin_client.post(url, {"text": text}, follow=True)
    assert response.status_code == 200
    assert "imported 100000" in response.content.decode()
    assert CardKey.objects.filter(product=product).count() == 100_000


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("product=p&quantity=1&email=buyer@example.com", "application/x-www-form-urlencoded"),
        (json.dumps(ORDER), "text/plain"),
        (json.dumps(ORDER), "text/plain;charset=UTF-8"),
    ],
)
def test_api_order_that_is_not_json_is_415_and_creates_nothing(client, data, content_type):
    stock_product(1, slug="p")
    response = client.post("/api/v1/orders", data, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert not Order.objects.exists()


def test_api_order_as_multipart_form_is_415(client):
    stock_product(1, slug="p")
    response = client.post("/api/v1/orders", ORDER)  # the test client's default: multipart
    assert response.status_code == 415
    assert not Order.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_api_order_as_json_still_works(client, content_type):
    stock_product(1, slug="p")
    response = client.post("/api/v1/orders", json.dumps(ORDER), content_type=content_type)
    assert response.status_code == 201
    assert Order.objects.count() == 1


def test_text_email_has_keys_verbatim_and_html_escaped(client, django_capture_on_commit_callbacks):
    raw = "KEY\"quote'-2&<x>"
    product = ProductFactory(slug="q")
    CardKey.objects.create(
        product=product, secret=encrypt_secret(raw), fingerprint=fingerprint(raw)
    )
    order = OrderFactory(product=product, quantity=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, completed_event(order)).status_code == 200
    (message,) = mail.outbox
    assert raw in message.body
    assert "&quot;" not in message.body and "&amp;" not in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert raw not in html
    assert "KEY&quot;quote&#x27;-2&amp;&lt;x&gt;" in html
