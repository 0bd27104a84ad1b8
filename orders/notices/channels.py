"""The owner's IM destinations, as outbox channels: Telegram, WeCom, DingTalk, Feishu, Bark and
any URL. Email to the owner is the outbox's own email channel.

Each reads its destination (``OwnerNotifier``) when it sends, so a token fixed in the admin
works on the next try, and the outbox rows never hold a credential. Each knows its service's
answer: what is sent, what is worth a retry (rate limits, busy, 5xx, no answer) and what is
not (a wrong token, a deleted robot, a failed signature or keyword check) — the latter gives
up at once with the service's own words, shown on the destination in the admin.

None of these services takes an idempotency key: like SMS, a dispatcher that dies between
the service accepting a message and the outcome being recorded sends it once more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any, ClassVar

from django.conf import settings

from core.log_redaction import register_secret
from orders.notices.models import OwnerNotifier
from orders.outbox.channels import Channel, signed_json_post
from orders.outbox.content import Content
from orders.outbox.errors import PermanentFailure
from orders.outbox.http import HttpAnswer, http_post
from orders.outbox.models import MessageChannel, OutboxMessage


def notifier_of(message: OutboxMessage) -> OwnerNotifier:
    notifier = OwnerNotifier.objects.filter(pk=message.payload.get("notifier_id")).first()
    if notifier is None:
        raise PermanentFailure("this notification's destination was deleted")
    # Tokens and robot URLs are credentials: never in a log line, whatever goes wrong.
    register_secret(notifier.secret)
    register_secret(notifier.target)
    return notifier


def _post_json(url: str, data: dict[str, Any], headers: dict[str, str] | None = None) -> HttpAnswer:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return http_post(
        url,
        body=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Kami-Notify/1",
            **(headers or {}),
        },
        timeout=settings.KAMI_OUTBOX_HTTP_TIMEOUT,
    )


def _json(answer: HttpAnswer) -> dict[str, Any]:
    try:
        value = json.loads(answer.body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _check_http(service: str, answer: HttpAnswer) -> None:
    """2xx passes; 408, 429 and 5xx are retried; any other status gives up."""
    if 200 <= answer.status < 300:
        return
    reason = f"{service} answered HTTP {answer.status}"
    body = _json(answer)
    detail = body.get("description") or body.get("message")
    if detail:
        reason += f": {str(detail)[:300]}"
    if answer.status in (408, 429) or answer.status >= 500:
        raise RuntimeError(reason)
    raise PermanentFailure(reason)


def truncate_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary, marked "…"."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - len("…".encode())].decode(errors="ignore") + "…"


class _NoticeChannel(Channel):
    service: ClassVar[str]


class TelegramChannel(_NoticeChannel):
    """Bot API ``sendMessage`` to a chat id. ``KAMI_TELEGRAM_API`` points at a self-hosted Bot
    API server or a relay where api.telegram.org cannot be reached."""

    name = MessageChannel.TELEGRAM
    service = "Telegram"
    LIMIT = 4096  # characters

    def send(self, message: OutboxMessage, content: Content) -> str:
        notifier = notifier_of(message)
        if not notifier.secret:
            raise PermanentFailure("no bot token set for this Telegram destination")
        url = f"{settings.KAMI_TELEGRAM_API.rstrip('/')}/bot{notifier.secret}/sendMessage"
        text = (
            content.text
            if len(content.text) <= self.LIMIT
            else content.text[: self.LIMIT - 1] + "…"
        )
        answer = _post_json(
            url, {"chat_id": notifier.target, "text": text, "disable_web_page_preview": True}
        )
        _check_http(self.service, answer)
        body = _json(answer)
        if not body.get("ok"):
            raise PermanentFailure(f"Telegram refused it: {str(body.get('description'))[:300]}")
        return f"telegram:{body.get('result', {}).get('message_id', '')}"


class _RobotChannel(_NoticeChannel):
    """A Chinese group robot: HTTP 200 always, the outcome in an ``errcode``-like field."""

    code_field: ClassVar[str] = "errcode"
    retry_codes: ClassVar[frozenset[int]] = frozenset()

    def payload(self, notifier: OwnerNotifier, content: Content) -> dict[str, Any]:
        raise NotImplementedError

    def url(self, notifier: OwnerNotifier) -> str:
        return notifier.target

    def send(self, message: OutboxMessage, content: Content) -> str:
        notifier = notifier_of(message)
        answer = _post_json(self.url(notifier), self.payload(notifier, content))
        _check_http(self.service, answer)
        body = _json(answer)
        code = body.get(self.code_field, body.get("StatusCode"))
        if code == 0:
            return f"{self.name}:ok"
        words = body.get("errmsg") or body.get("msg") or body.get("StatusMessage") or ""
        reason = f"{self.service} answered {self.code_field} {code}: {str(words)[:300]}"
        if code in self.retry_codes:
            raise RuntimeError(reason)
        raise PermanentFailure(reason)


class WeComChannel(_RobotChannel):
    """企业微信 group robot: text messages of at most 2048 bytes; 20 a minute per robot."""

    name = MessageChannel.WECOM
    service = "WeCom"
    retry_codes = frozenset({-1, 45009})  # system busy; over the rate limit
    LIMIT = 2048

    def payload(self, notifier: OwnerNotifier, content: Content) -> dict[str, Any]:
        return {"msgtype": "text", "text": {"content": truncate_bytes(content.text, self.LIMIT)}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64 of HMAC-SHA256(secret, "<timestamp>\\n<secret>"), URL-quoted."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return urllib.parse.quote_plus(base64.b64encode(mac.digest()).decode())


class DingTalkChannel(_RobotChannel):
    """钉钉 custom robot, signed when the robot has a secret. A robot secured by keywords
    refuses text without one (310000): the shop's name starts every message."""

    name = MessageChannel.DINGTALK
    service = "DingTalk"
    retry_codes = frozenset({-1, 130101})  # system busy; sending too fast
    LIMIT = 18000  # bytes, under DingTalk's 20000

    def url(self, notifier: OwnerNotifier) -> str:
        if not notifier.secret:
            return notifier.target
        timestamp = int(time.time() * 1000)
        joiner = "&" if "?" in notifier.target else "?"
        return (
            f"{notifier.target}{joiner}timestamp={timestamp}"
            f"&sign={dingtalk_sign(notifier.secret, timestamp)}"
        )

    def payload(self, notifier: OwnerNotifier, content: Content) -> dict[str, Any]:
        return {"msgtype": "text", "text": {"content": truncate_bytes(content.text, self.LIMIT)}}


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu's signature: base64 of HMAC-SHA256 keyed with "<timestamp>\\n<secret>" over
    nothing (the service's documented scheme)."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class FeishuChannel(_RobotChannel):
    """飞书 / Lark custom bot, signed when the bot has a secret."""

    name = MessageChannel.FEISHU
    service = "Feishu"
    code_field = "code"
    retry_codes = frozenset({9499, 11232})  # too many requests; frequency limited
    LIMIT = 18000  # bytes, under the 20 KB request limit

    def payload(self, notifier: OwnerNotifier, content: Content) -> dict[str, Any]:
        data: dict[str, Any] = {
            "msg_type": "text",
            "content": {"text": truncate_bytes(content.text, self.LIMIT)},
        }
        if notifier.secret:
            timestamp = int(time.time())
            data.update(timestamp=str(timestamp), sign=feishu_sign(notifier.secret, timestamp))
        return data


class BarkChannel(_NoticeChannel):
    """Bark: a push to one iPhone, through api.day.app or the owner's own Bark server; the
    device key is the last part of the URL. A tap opens the admin page of the events."""

    name = MessageChannel.BARK
    service = "Bark"

    def send(self, message: OutboxMessage, content: Content) -> str:
        notifier = notifier_of(message)
        answer = _post_json(
            notifier.target,
            {
                "title": content.subject[:120],
                "body": content.text[:1000],
                "group": "Kami",
                "url": content.data.get("url", ""),
            },
        )
        _check_http(self.service, answer)
        body = _json(answer)
        if body.get("code", 200) != 200:
            raise PermanentFailure(f"Bark answered {body.get('code')}: {body.get('message', '')}")
        return "bark:ok"


class WebhookChannel(_NoticeChannel):
    """Any URL: the batch as JSON, signed like the owner's order callback (``Kami-Signature``
    with this destination's secret) and carrying ``Idempotency-Key``, so a copy sent again
    after a crash is recognisably the same."""

    name = MessageChannel.WEBHOOK
    service = "The notification URL"

    def send(self, message: OutboxMessage, content: Content) -> str:
        notifier = notifier_of(message)
        if not notifier.secret:
            raise PermanentFailure("no signing secret set for this URL")
        data = {
            "id": message.idempotency_key,
            "type": "owner.notice",
            "created": int(message.created_at.timestamp()),
            "data": {"subject": content.subject, "text": content.text, **content.data},
        }
        answer = signed_json_post(
            notifier.target,
            data,
            secret=notifier.secret,
            idempotency_key=message.idempotency_key,
            user_agent="Kami-Notify/1",
        )
        _check_http(self.service, answer)
        return f"HTTP {answer.status}"


NOTICE_CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        TelegramChannel(),
        WeComChannel(),
        DingTalkChannel(),
        FeishuChannel(),
        BarkChannel(),
        WebhookChannel(),
    )
}
