"""``POST /api/v1/orders/{order_no}/lookup``: the GET lookup with credentials in the body (§4)."""

from __future__ import annotations

import pytest

from orders.models import Order, OrderStatus
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def create(client, **body):
    payload = {"product": "p", "quantity": 1, "email": "a@example.com"} | body
    response = client.post("/api/v1/orders", payload, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["order_no"]


def lookup(client, order_no, body, **extra):
    return client.post(
        f"/api/v1/orders/{order_no}/lookup", body, content_type="application/json", **extra
    )


def get(client, order_no, params, **extra):
    return client.get(f"/api/v1/orders/{order_no}", params, **extra)


def test_right_email_shows_the_keys_once_delivered(client, django_capture_on_commit_callbacks):
    stock_product(2, slug="p")
    no = create(client)
    pending = lookup(client, no, {"email": "A@example.com"})
    assert pending.status_code == 200 and pending.json()["keys"] == []
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post_event(client, completed_event(Order.objects.get(order_no=no))).status_code == 200
        )
    response = lookup(client, no, {"email": "a@example.com"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == OrderStatus.DELIVERED and body["keys"] == ["p-KEY-0"]
    assert body == get(client, no, {"email": "a@example.com"}).json()  # same answer as GET


def test_right_query_password_answers_like_get(client):
    stock_product(1, slug="p")
    no = create(client, query_password="hunter2!")
    response = lookup(client, no, {"query_password": "hunter2!"})
    assert response.status_code == 200 and response.json()["order_no"] == no
    assert response.json() == get(client, no, {"query_password": "hunter2!"}).json()


@pytest.mark.parametrize(
    "body",
    [
        {"email": "b@example.com"},
        {"query_password": "hunter2"},
        {},
        {"email": "", "query_password": ""},
    ],
)
def test_wrong_credentials_answer_exactly_like_an_unknown_order(client, body):
    stock_product(1, slug="p")
    no = create(client, query_password="hunter2!")
    wrong = lookup(client, no, body)
    unknown = lookup(client, "K000000NOPE", {"email": "a@example.com"})
    by_get = get(client, "K000000NOPE", {"email": "a@example.com"})
    assert wrong.status_code == unknown.status_code == by_get.status_code == 404
    assert wrong.json() == unknown.json() == by_get.json()
    assert wrong.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a" * 243 + "@example.com"},  # 255 characters
        {"query_password": "x" * 129},
        {"email": 5},
    ],
)
def test_oversized_or_malformed_body_is_422(client, body):
    response = lookup(client, "K000000NOPE", body)
    assert response.status_code == 422 and response.json()["code"] == "invalid"


def test_malformed_json_is_422(client):
    response = client.post(
        "/api/v1/orders/K000000NOPE/lookup", "{", content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("failing_form", ["post", "get", "mixed"])
def test_failures_from_either_form_rate_limit_both(client, failing_form):
    stock_product(1, slug="p")
    no = create(client)
    for i in range(30):
        use_post = failing_form == "post" or (failing_form == "mixed" and i % 2)
        miss = (
            lookup(client, no, {"email": "x@example.com"})
            if use_post
            else get(client, no, {"email": "x@example.com"})
        )
        assert miss.status_code == 404
    # Both forms are now refused, even with the right email.
    for limited in (
        lookup(client, no, {"email": "a@example.com"}),
        get(client, no, {"email": "a@example.com"}),
    ):
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert 0 < int(limited["Retry-After"]) <= 600
    # Per client IP: another address is not limited.
    other = lookup(client, no, {"email": "a@example.com"}, REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 200


def test_openapi_documents_the_post_lookup(client):
    spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/orders/{order_no}/lookup"]["post"]
    assert set(operation["responses"]) >= {"200", "404", "422", "429"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/OrderOut")
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"email", "query_password"}
    assert not schema.get("required")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_answer_that_can_carry_keys_is_never_cached(client, method):
    order = OrderFactory(product=stock_product(1, slug="nocache"))
    if method == "get":
        response = client.get(f"/api/v1/orders/{order.order_no}", {"email": order.email})
    else:
        response = client.post(
            f"/api/v1/orders/{order.order_no}/lookup",
            {"email": order.email},
            content_type="application/json",
        )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
