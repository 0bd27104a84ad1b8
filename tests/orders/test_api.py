"""The public API as a script sees it (contract §4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order, OrderStatus
from shop.models import ShopSettings
from tests.factories import OrderFactory, ProductFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def create(client, **body):
    payload = {"product": "p", "quantity": 1, "email": "buyer@example.com"} | body
    return client.post("/api/v1/orders", payload, content_type="application/json")


def test_products_list_shows_only_on_sale_with_live_stock(client):
    stock_product(3, slug="p", price=990)
    ProductFactory(slug="hidden", on_sale=False)
    body = client.get("/api/v1/products").json()
    assert [p["slug"] for p in body] == ["p"]
    assert body[0] | {"category": None} == {
        "slug": "p",
        "name": body[0]["name"],
        "price": "9.90",
        "currency": "USD",
        "stock": 3,
        "category": None,
    }
    detail = client.get("/api/v1/products/p").json()
    assert detail["description"] == "A test product."
    assert client.get("/api/v1/products/hidden").status_code == 404
    assert client.get("/api/v1/products/nope").json()["code"] == "not_found"


def test_create_order_holds_stock_and_returns_sandbox_pay_url(client):
    stock_product(10, slug="p", price=1234)
    response = create(client, quantity=2, email="Buyer@Example.com")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["amount"] == "24.68" and body["currency"] == "USD"
    assert body["pay_url"].endswith(f"/pay/sandbox/{body['order_no']}")
    assert client.get("/api/v1/products/p").json()["stock"] == 8  # two held for the buyer
    order = Order.objects.get(order_no=body["order_no"])
    assert order.email == "buyer@example.com" and order.amount == 2468
    assert order.holds_keys and body["held_until"] is not None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email"}, 422, "invalid"),
        ({"quantity": 0}, 422, "invalid"),
        ({"quantity": 11}, 422, "invalid"),  # over max_per_order
        ({"quantity": "two"}, 422, "invalid"),
        ({"quantity": "1_0"}, 422, "invalid"),  # not read as 10
        ({"quantity": "2"}, 422, "invalid"),  # a JSON integer, not a string
        ({"quantity": "10"}, 422, "invalid"),
        ({"quantity": True}, 422, "invalid"),  # not read as 1
        ({"quantity": 1.0}, 422, "invalid"),  # a float, even a whole one
        ({"quantity": 1.5}, 422, "invalid"),
        ({"quantity": None}, 422, "invalid"),
        ({"coupon": "NOPE"}, 422, "invalid"),
        ({"variant": "xl"}, 422, "invalid"),
        ({"product": "missing"}, 404, "not_found"),
        ({"quantity": 4}, 409, "out_of_stock"),
    ],
)
def test_create_order_errors_are_json_and_change_nothing(client, body, status, code):
    stock_product(3, slug="p")
    response = create(client, **body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and response.json()["message"]
    assert Order.objects.count() == 0


def test_malformed_json_is_422(client):
    response = client.post("/api/v1/orders", "{", content_type="application/json")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"


def test_too_many_unpaid_per_email_and_per_ip(client):
    stock_product(10, slug="p")
    assert create(client, email="a@example.com").status_code == 201
    assert create(client, email="a@example.com").status_code == 201
    third = create(client, email="A+again@example.com")  # a +tag is the same buyer
    assert third.status_code == 429 and third.json()["code"] == "too_many_unpaid"
    # Same IP (the test client's), other email: the IP limit is 2 as well.
    assert create(client, email="b@example.com").json()["code"] == "too_many_unpaid"
    settings_row = ShopSettings.load()
    settings_row.max_unpaid_per_ip = 5
    settings_row.save()
    assert create(client, email="b@example.com").status_code == 201


def test_expired_holds_do_not_count_as_unpaid_or_stock(client):
    product = stock_product(2, slug="p")
    OrderFactory(
        product=product,
        quantity=2,
        email="a@example.com",
        client_ip="127.0.0.1",
        hold_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert client.get("/api/v1/products/p").json()["stock"] == 2
    assert create(client, email="a@example.com", quantity=2).status_code == 201


def test_get_order_by_email_or_query_password(client):
    stock_product(2, slug="p")
    body = create(client, email="a@example.com", query_password="hunter2!").json()
    no = body["order_no"]
    by_email = client.get(f"/api/v1/orders/{no}", {"email": "A@example.com"})
    assert by_email.status_code == 200 and by_email.json()["keys"] == []
    assert client.get(f"/api/v1/orders/{no}", {"query_password": "hunter2!"}).status_code == 200
    wrong = client.get(f"/api/v1/orders/{no}", {"email": "b@example.com"})
    unknown = client.get("/api/v1/orders/K000000NOPE", {"email": "a@example.com"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()


def test_delivered_order_shows_keys(client, django_capture_on_commit_callbacks):
    stock_product(2, slug="p")
    no = create(client, email="a@example.com").json()["order_no"]
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(client, completed_event(Order.objects.get(order_no=no)))
    assert response.status_code == 200
    body = client.get(f"/api/v1/orders/{no}", {"email": "a@example.com"}).json()
    assert body["status"] == OrderStatus.DELIVERED
    assert body["keys"] == ["p-KEY-0"] and body["paid_at"] and body["delivered_at"]


def test_failed_lookups_are_rate_limited_per_ip(client):
    stock_product(1, slug="p")
    no = create(client, email="a@example.com").json()["order_no"]
    for _ in range(30):
        assert client.get(f"/api/v1/orders/{no}", {"email": "x@example.com"}).status_code == 404
    limited = client.get(f"/api/v1/orders/{no}", {"email": "a@example.com"})  # even a right one
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 0 < int(limited["Retry-After"]) <= 600
    other_ip = client.get(
        f"/api/v1/orders/{no}", {"email": "a@example.com"}, REMOTE_ADDR="198.51.100.7"
    )
    assert other_ip.status_code == 200


def test_openapi_is_published(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/orders" in spec["paths"]
    assert client.get("/api/v1/docs").status_code == 200
