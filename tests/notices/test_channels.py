"""Each IM destination, against a real HTTP server standing in for the service: what is sent
(format, signature), what is retried and what gives up. Nothing in Kami is patched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

from orders.models import MessageAttempt, OutboxMessage
from orders.notices.channels import truncate_bytes
from orders.outbox.channels import SIGNATURE_HEADER
from orders.outbox.dispatch import messages_dispatch
from orders.outbox.models import AttemptOutcome, MessageStatus
from tests.factories import OrderFactory, stock_product
from tests.http_receiver import http_receiver
from tests.notices.conftest import notifier, owner_messages, retries_due

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "SEC" + "0123456789abcdef" * 4


def one_order_noticed(pay) -> OutboxMessage:
    order = pay(OrderFactory(product=stock_product(1, slug="steam", name="Steam 100")))
    messages_dispatch()
    message = owner_messages().get()
    message.order_no = order.order_no
    return message


def test_telegram_bot_api(pay, settings):
    with http_receiver(
        (200, json.dumps({"ok": True, "result": {"message_id": 42}}).encode())
    ) as tg:
        settings.KAMI_TELEGRAM_API = tg.url
        notifier("telegram", "-1001234567890", secret=TOKEN, batch_seconds=0)
        message = one_order_noticed(pay)
    (request,) = tg.requests
    assert request.path == f"/bot{TOKEN}/sendMessage"
    body = json.loads(request.body)
    assert body["chat_id"] == "-1001234567890" and body["disable_web_page_preview"] is True
    assert body["text"].startswith("Kami Test: 1 new order")
    assert message.order_no in body["text"]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.provider_ref == "telegram:42"
    assert TOKEN not in message.recipient and TOKEN not in json.dumps(message.payload)


def test_telegram_rate_limit_is_retried_and_a_wrong_token_gives_up(pay, settings):
    limited = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5"}
    refused = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with http_receiver(
        (429, json.dumps(limited).encode()), (401, json.dumps(refused).encode())
    ) as tg:
        settings.KAMI_TELEGRAM_API = tg.url
        notifier("telegram", "@kami_night_shift", secret=TOKEN, batch_seconds=0)
        message = one_order_noticed(pay)
        message.refresh_from_db()
        assert message.status == MessageStatus.PENDING
        assert "HTTP 429: Too Many Requests: retry after 5" in message.last_error
        retries_due()
        messages_dispatch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 2
    assert message.last_error == "Telegram answered HTTP 401: Unauthorized"
    outcomes = MessageAttempt.objects.filter(message=message).values_list("outcome", flat=True)
    assert list(outcomes) == [AttemptOutcome.FAILED, AttemptOutcome.GAVE_UP]


def test_wecom_robot_text_within_its_byte_limit_and_its_error_codes(pay):
    busy = json.dumps({"errcode": 45009, "errmsg": "api freq out of limit"}).encode()
    wrong = json.dumps({"errcode": 93000, "errmsg": "invalid webhook url"}).encode()
    with http_receiver((200, busy), (200, wrong)) as robot:
        notifier("wecom", f"{robot.url}/cgi-bin/webhook/send?key=abc-123", batch_seconds=0)
        message = one_order_noticed(pay)
        message.refresh_from_db()
        assert message.status == MessageStatus.PENDING  # over the rate limit: later
        assert (
            message.last_error
            == "RuntimeError: WeCom answered errcode 45009: api freq out of limit"
        )
        retries_due()
        messages_dispatch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.last_error == "WeCom answered errcode 93000: invalid webhook url"
    first = robot.requests[0]
    assert first.path == "/cgi-bin/webhook/send?key=abc-123"
    body = json.loads(first.body)
    assert body["msgtype"] == "text" and message.order_no in body["text"]["content"]


def test_text_is_cut_to_a_byte_limit_on_a_character_boundary():
    text = "新订单" * 1000  # 3 bytes each
    cut = truncate_bytes(text, 2048)
    assert len(cut.encode()) <= 2048 and cut.endswith("…") and cut[:-1] == text[: len(cut) - 1]
    assert truncate_bytes("short", 2048) == "short"


def test_dingtalk_robot_signed_with_its_secret(pay):
    with http_receiver((200, b'{"errcode":0,"errmsg":"ok"}')) as robot:
        notifier(
            "dingtalk",
            f"{robot.url}/robot/send?access_token=tok",
            secret=SECRET,
            batch_seconds=0,
        )
        message = one_order_noticed(pay)
    (request,) = robot.requests
    query = parse_qs(urlsplit(request.path).query)
    assert query["access_token"] == ["tok"]
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert unquote_plus(request.path.split("sign=")[1]) == expected  # DingTalk's recipe
    assert json.loads(request.body)["text"]["content"].startswith("Kami Test")
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_dingtalk_keyword_or_signature_refusal_gives_up_with_its_words(pay):
    refusal = json.dumps({"errcode": 310000, "errmsg": "keywords not in content"}).encode()
    with http_receiver((200, refusal)) as robot:
        notifier("dingtalk", f"{robot.url}/robot/send?access_token=tok", batch_seconds=0)
        message = one_order_noticed(pay)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert message.last_error == "DingTalk answered errcode 310000: keywords not in content"
    assert "timestamp=" not in robot.requests[0].path  # no secret: not signed


def test_feishu_bot_signed_in_the_body(pay):
    with http_receiver((200, b'{"code":0,"msg":"success","data":{}}')) as bot:
        notifier("feishu", f"{bot.url}/open-apis/bot/v2/hook/abc", secret=SECRET, batch_seconds=0)
        message = one_order_noticed(pay)
    body = json.loads(bot.requests[0].body)
    assert body["msg_type"] == "text" and message.order_no in body["content"]["text"]
    key = f"{body['timestamp']}\n{SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_feishu_frequency_limit_is_retried_a_bad_signature_is_not(pay):
    limited = json.dumps({"code": 11232, "msg": "frequency limited"}).encode()
    bad_sign = json.dumps(
        {
            "code": 19021,
            "msg": "sign match fail or timestamp is not within one hour from current time",
        }
    ).encode()
    with http_receiver((200, limited), (200, bad_sign)) as bot:
        notifier("feishu", f"{bot.url}/open-apis/bot/v2/hook/abc", secret=SECRET, batch_seconds=0)
        message = one_order_noticed(pay)
        message.refresh_from_db()
        assert message.status == MessageStatus.PENDING
        retries_due()
        messages_dispatch()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.last_error.startswith("Feishu answered code 19021: sign match fail")


def test_bark_push_opens_the_admin(pay, settings):
    with http_receiver((200, b'{"code":200,"message":"success"}')) as bark:
        notifier("bark", f"{bark.url}/DEVICEKEY123", batch_seconds=0)
        message = one_order_noticed(pay)
    (request,) = bark.requests
    assert request.path == "/DEVICEKEY123"
    body = json.loads(request.body)
    assert body["title"] == "[Kami Test] 1 new order"
    assert message.order_no in body["body"]
    assert body["url"] == f"{settings.SITE_URL}/admin/orders/order/"
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_any_url_gets_signed_json_with_the_counts(pay):
    with http_receiver((503, b"busy"), (200, b"ok")) as endpoint:
        notifier("webhook", f"{endpoint.url}/hooks/kami", secret=SECRET, batch_seconds=0)
        message = one_order_noticed(pay)
        retries_due()
        messages_dispatch()
    first, second = endpoint.requests
    assert first.body == second.body  # the same notification, recognisably
    for request in (first, second):
        assert request.headers["Idempotency-Key"] == message.idempotency_key
        parts = dict(item.split("=", 1) for item in request.headers[SIGNATURE_HEADER].split(","))
        mac = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + request.body, hashlib.sha256)
        assert hmac.compare_digest(mac.hexdigest(), parts["v1"])
    event = json.loads(first.body)
    assert event["type"] == "owner.notice" and event["data"]["counts"] == {"new_order": 1}
    (item,) = event["data"]["items"]
    assert item["order_no"] == message.order_no and item["amount"] == "9.90"
    assert "email" not in item
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_a_deleted_destination_gives_up_without_sending(pay):
    with http_receiver() as bark:
        owner = notifier("bark", f"{bark.url}/KEY", batch_seconds=0)
        order = pay(OrderFactory(product=stock_product(1, slug="p")))
        from orders.notices.batching import notices_batch

        notices_batch()
        owner.delete()
        messages_dispatch()
    assert bark.requests == [] and order.pk
    message = owner_messages().get()
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert message.last_error == "this notification's destination was deleted"
