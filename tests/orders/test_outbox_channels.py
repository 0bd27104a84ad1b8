"""The outbox's network channels against real HTTP servers on localhost: the owner's signed
callback, and SMS through Twilio's REST shape (and the logging backend for development)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.utils import timezone

from orders.models import (
    AttemptOutcome,
    MessageAttempt,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    OutboxMessage,
)
from orders.outbox.channels import SIGNATURE_HEADER
from orders.outbox.dispatch import messages_dispatch
from orders.payments.inbox import payment_event_receive
from orders.payments.processing import payment_event_process
from orders.payments.stripe_events import encode, sign_payload
from shop.models import ShopSettings
from tests.factories import OrderFactory, stock_product
from tests.http_receiver import http_receiver
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SECRET = "s" * 40


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    def _pay(order):
        payload = encode(completed_event(order))
        with django_capture_on_commit_callbacks(execute=False):
            event, _ = payment_event_receive(
                payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            )
            assert payment_event_process(event_id=event.pk)
        order.refresh_from_db()
        return order

    return _pay


def due_now() -> None:
    OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )


def verify(secret: str, header: str, body: bytes) -> bool:
    """What the owner's endpoint does with ``Kami-Signature`` (documented in the README)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


def test_every_delivery_is_posted_to_the_owners_callback_signed_and_retried(pay):
    with http_receiver((503, b"busy"), (200, b"ok")) as endpoint:
        ShopSettings.objects.update_or_create(
            pk=1,
            defaults={"callback_url": f"{endpoint.url}/kami", "callback_secret": SECRET},
        )
        order = pay(OrderFactory(product=stock_product(1, slug="p")))
        callback = OutboxMessage.objects.get(purpose=MessagePurpose.ORDER_CALLBACK)
        assert callback.channel == MessageChannel.CALLBACK
        assert OutboxMessage.objects.count() == 2  # and the buyer's email, in the same INSERT

        messages_dispatch()
        callback.refresh_from_db()
        assert callback.status == MessageStatus.PENDING and "HTTP 503" in callback.last_error
        due_now()
        messages_dispatch()
        callback.refresh_from_db()
        assert callback.status == MessageStatus.SENT

    first, second = endpoint.requests
    assert first.path == second.path == "/kami"
    assert first.body == second.body  # the same event each time: the same id, the same data
    for request in (first, second):
        assert request.headers["Idempotency-Key"] == f"order_callback:{order.order_no}:callback"
        assert request.headers["Content-Type"] == "application/json"
        assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body)
        assert not verify("another-secret" * 3, request.headers[SIGNATURE_HEADER], request.body)
    event = json.loads(first.body)
    assert event["type"] == "order.delivered" and event["id"] == callback.idempotency_key
    assert event["data"]["order_no"] == order.order_no and event["data"]["amount"] == "9.90"
    assert "p-KEY-0" not in first.body.decode()  # no keys leave by callback
    outcomes = MessageAttempt.objects.filter(message=callback).values_list("outcome", flat=True)
    assert list(outcomes) == [AttemptOutcome.FAILED, AttemptOutcome.SENT]


def test_a_callback_refused_with_4xx_gives_up_at_once(pay):
    with http_receiver((410, b"gone")) as endpoint:
        ShopSettings.objects.update_or_create(
            pk=1, defaults={"callback_url": endpoint.url, "callback_secret": SECRET}
        )
        pay(OrderFactory(product=stock_product(1, slug="p")))
        messages_dispatch()
    callback = OutboxMessage.objects.get(purpose=MessagePurpose.ORDER_CALLBACK)
    assert callback.status == MessageStatus.FAILED and callback.attempts == 1
    assert "HTTP 410" in callback.last_error


def twilio_settings(settings, url: str) -> None:
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = "AC123"
    settings.TWILIO_AUTH_TOKEN = "token-abc"
    settings.TWILIO_FROM = "+15550001111"
    settings.TWILIO_API_BASE = url


def test_sms_through_twilios_rest_api(pay, settings):
    sid = json.dumps({"sid": "SM0123456789", "status": "queued"}).encode()
    with http_receiver((201, sid)) as twilio:
        twilio_settings(settings, twilio.url)
        product = stock_product(1, slug="p", name="Game")
        product.message_channels = "sms,inbox"
        product.save()
        order = pay(OrderFactory(product=product, phone="+15551234567"))
        messages_dispatch()
    sms = OutboxMessage.objects.get()
    assert sms.status == MessageStatus.SENT and sms.provider_ref == "SM0123456789"
    (request,) = twilio.requests
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    credentials = base64.b64encode(b"AC123:token-abc").decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+15551234567"] and form["From"] == ["+15550001111"]
    assert order.order_no in form["Body"][0] and f"/o/{order.order_no}" in form["Body"][0]
    assert "p-KEY-0" not in form["Body"][0]  # an SMS points at the order page, never a key


def test_a_number_twilio_refuses_falls_back_to_the_next_channel(pay, settings):
    refusal = json.dumps({"code": 21211, "message": "The 'To' number is not valid."}).encode()
    with http_receiver((400, refusal)) as twilio:
        twilio_settings(settings, twilio.url)
        product = stock_product(1, slug="p")
        product.message_channels = "sms,inbox"
        product.save()
        order = pay(OrderFactory(product=product, phone="+15551234567"))
        messages_dispatch()
    sms = OutboxMessage.objects.get(channel=MessageChannel.SMS)
    assert sms.status == MessageStatus.FAILED and "21211" in sms.last_error
    assert OutboxMessage.objects.get(channel=MessageChannel.INBOX).status == MessageStatus.SENT
    assert order.inbox.count() == 1


def test_twilio_busy_is_retried(pay, settings):
    ok = json.dumps({"sid": "SM1"}).encode()
    with http_receiver((429, b'{"code": 20429}'), (201, ok)) as twilio:
        twilio_settings(settings, twilio.url)
        product = stock_product(1, slug="p")
        product.message_channels = "sms"
        product.save()
        pay(OrderFactory(product=product, phone="+15551234567"))
        messages_dispatch()
        due_now()
        messages_dispatch()
    sms = OutboxMessage.objects.get()
    assert sms.status == MessageStatus.SENT and sms.attempts == 2 and len(twilio.requests) == 2


def test_the_logging_sms_backend_logs_the_text_with_a_masked_number(pay, settings, caplog):
    settings.SMS_BACKEND = "logging"
    product = stock_product(1, slug="p")
    product.message_channels = "sms"
    product.save()
    order = pay(OrderFactory(product=product, phone="+15551234567"))
    with caplog.at_level(logging.INFO, logger="kami.sms"):
        messages_dispatch()
    assert OutboxMessage.objects.get().status == MessageStatus.SENT
    (record,) = [r for r in caplog.records if r.name == "kami.sms"]
    text = record.getMessage()
    assert order.order_no in text and "+15551234567" not in text and "p-KEY-0" not in text


def test_without_an_sms_backend_the_chain_skips_sms(pay, settings):
    settings.SMS_BACKEND = ""
    product = stock_product(1, slug="p")
    product.message_channels = "sms,inbox"
    product.save()
    pay(OrderFactory(product=product, phone="+15551234567"))
    assert OutboxMessage.objects.get().channel == MessageChannel.INBOX


def test_checkout_takes_an_optional_phone_in_e164(client):
    stock_product(2, slug="p")
    ok = client.post(
        "/api/v1/orders",
        {"product": "p", "quantity": 1, "email": "a@example.com", "phone": "+1 555 123 4567"},
        content_type="application/json",
    )
    assert ok.status_code == 201
    from orders.models import Order

    assert Order.objects.get(order_no=ok.json()["order_no"]).phone == "+15551234567"
    bad = client.post(
        "/api/v1/orders",
        {"product": "p", "quantity": 1, "email": "b@example.com", "phone": "555-CALL-ME"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"
