"""Signed webhook bodies that are not sane Stripe events: refused at the edge, nothing stored.

Every body here carries a valid ``Stripe-Signature`` over its exact bytes (as Stripe signs),
so only the body itself (or the signature's timestamp) can be why it is refused (issue #9).
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from orders.models import OrderStatus, PaymentEvent
from orders.payments.inbox import MAX_BODY_BYTES, WebhookTooLarge, payment_event_receive
from orders.payments.stripe_events import encode, sign_payload
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import WEBHOOK_URL, completed_event, refund_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def order():
    return OrderFactory(product=stock_product(1, slug="h"), quantity=1)


def post_signed(client, body: bytes, *, timestamp: int | None = None):
    header = sign_payload(
        body, settings.STRIPE_WEBHOOK_SECRET, timestamp=timestamp or int(time.time())
    )
    return client.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def assert_refused(response, *, status: int = 400, code: str = "invalid_event") -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"]
    assert PaymentEvent.objects.count() == 0


def test_deeply_nested_body_is_400(client, order):
    event = completed_event(order)
    deep = b"[" * 100_000 + b"]" * 100_000
    body = encode(event)[:-1] + b',"x":' + deep + b"}"
    assert_refused(post_signed(client, body))


def test_moderately_nested_body_beyond_depth_limit_is_400(client, order):
    event = completed_event(order)
    nested: dict = {}
    for _ in range(200):  # parses fine, but no Stripe event nests like this
        nested = {"n": nested}
    event["data"]["object"]["metadata"]["deep"] = nested
    assert_refused(post_signed(client, encode(event)))


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_nan_or_infinite_number_is_400(client, order, constant):
    event = completed_event(order)
    body = encode(event).replace(b'"livemode":false', b'"livemode":' + constant)
    assert constant in body
    assert_refused(post_signed(client, body))


@pytest.mark.parametrize(
    "where", ["id", "type", "value", "key"], ids=["in-id", "in-type", "in-value", "in-key"]
)
def test_nul_character_is_400(client, order, where):
    event = completed_event(order)
    if where == "id":
        event["id"] = "evt_\u0000x"
    elif where == "type":
        event["type"] = "checkout.session.completed\u0000"
    elif where == "value":
        event["data"]["object"]["customer_email"] = "a\u0000@example.com"
    else:
        event["data"]["object"]["metadata"]["k\u0000"] = "v"
    body = encode(event)
    assert b"\\u0000" in body
    assert_refused(post_signed(client, body))


def test_lone_surrogate_escape_is_400(client, order):
    event = completed_event(order)
    body = encode(event).replace(b'"mode":"payment"', b'"mode":"\\ud800"')
    assert b"\\ud800" in body
    assert_refused(post_signed(client, body))


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "evt_" + "x" * 10_000), ("type", "checkout.session." + "x" * 100)],
    ids=["id-10k", "type-117"],
)
def test_overlong_event_id_or_type_is_400(client, order, field, value):
    event = completed_event(order)
    event[field] = value
    assert_refused(post_signed(client, encode(event)))


@pytest.mark.parametrize("value", [None, 42, ["evt_1"], ""], ids=["null", "int", "list", "empty"])
def test_event_id_that_is_not_a_string_is_400(client, order, value):
    event = completed_event(order)
    event["id"] = value
    assert_refused(post_signed(client, encode(event)))


@pytest.mark.parametrize("value", [10**30, -1, 2**53 + 1, "100", 1.5, True])
def test_amount_total_out_of_range_or_not_an_int_is_400(client, order, value):
    event = completed_event(order, amount_total=0)
    event["data"]["object"]["amount_total"] = value
    assert_refused(post_signed(client, encode(event)))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


@pytest.mark.parametrize("field", ["amount", "amount_refunded"])
def test_refund_amounts_out_of_range_are_400(client, field):
    event = refund_event("pi_test_hardening", amount=100, amount_refunded=100)
    event["data"]["object"][field] = 10**30
    assert_refused(post_signed(client, encode(event)))


@pytest.mark.parametrize("value", [10**30, -5, "1700000000", 1.7e9])
def test_created_that_is_not_a_sane_timestamp_is_400(client, order, value):
    event = completed_event(order)
    event["created"] = value
    assert_refused(post_signed(client, encode(event)))


def test_metadata_that_is_not_an_object_is_400(client, order):
    event = completed_event(order)
    event["data"]["object"]["metadata"] = ["order_no"]
    assert_refused(post_signed(client, encode(event)))


@pytest.mark.parametrize("body", [b"[]", b'"evt"', b"null", b"{}", b'{"id":"evt_1","type":"x"}'])
def test_signed_json_that_is_not_an_event_is_400(client, body):
    assert_refused(post_signed(client, body))


def test_signature_timestamp_in_the_future_is_400(client, order):
    future = int(time.time()) + 10 * 365 * 24 * 3600
    response = post_signed(client, encode(completed_event(order)), timestamp=future)
    assert_refused(response, code="invalid_signature")


def test_signature_timestamp_just_past_tolerance_in_the_future_is_400(client, order):
    soon = int(time.time()) + settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS + 5
    response = post_signed(client, encode(completed_event(order)), timestamp=soon)
    assert_refused(response, code="invalid_signature")


def test_signature_timestamp_slightly_in_the_future_is_accepted(client, order):
    # Clock skew inside the tolerance is fine, both ways.
    response = post_signed(client, encode(completed_event(order)), timestamp=int(time.time()) + 60)
    assert response.status_code == 200
    assert PaymentEvent.objects.count() == 1


def test_oversized_body_is_413_and_stores_nothing(client, order):
    event = completed_event(order)
    event["data"]["object"]["metadata"]["pad"] = "x" * MAX_BODY_BYTES
    assert_refused(post_signed(client, encode(event)), status=413, code="too_large")


def test_oversized_body_is_refused_before_verification(client, order, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("verified an oversized body")

    monkeypatch.setattr("orders.payments.inbox.WebhookSignature.verify_header", fail)
    response = client.post(
        WEBHOOK_URL,
        data=b"x" * (MAX_BODY_BYTES + 1),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
    )
    assert_refused(response, status=413, code="too_large")


def test_oversized_payload_is_refused_by_the_inbox_itself(order):
    body = b"x" * (MAX_BODY_BYTES + 1)
    with pytest.raises(WebhookTooLarge):
        payment_event_receive(payload=body, signature="t=1,v1=00")
    assert PaymentEvent.objects.count() == 0


def test_largest_sane_event_is_still_accepted(client, order):
    event = completed_event(order)
    event["data"]["object"]["metadata"]["note"] = "x" * 1000
    event["data"]["object"]["line_items"] = {"data": [{"amount": 2**53, "price": {"id": "p"}}]}
    response = post_signed(client, json.dumps(event).encode())
    assert response.status_code == 200
    assert PaymentEvent.objects.count() == 1
