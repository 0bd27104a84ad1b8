"""The channels a message can take, one class each, behind one small interface.

``send`` hands the rendered content to the far end and returns the provider's id for it;
it raises ``PermanentFailure`` when retrying cannot help and anything else when it might.
``in_transaction`` channels (the site inbox) are written inside the transaction that records
the message as sent, so they happen exactly once; the others cross the network and are sent
between the claim and the record (see ``orders.outbox`` for what that promises).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from email.utils import parseaddr
from typing import Any, ClassVar

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from orders.outbox.content import Content
from orders.outbox.errors import PermanentFailure
from orders.outbox.http import HttpAnswer, http_post
from orders.outbox.models import InboxMessage, MessageChannel, OutboxMessage
from orders.outbox.sms import sms_provider
from shop.models import ShopSettings

SIGNATURE_HEADER = "Kami-Signature"


def message_id(idempotency_key: str) -> str:
    """The email's ``Message-ID``: the same for every try of one message, so a copy sent again
    after a crash is recognisably the same message, and different for the owner's resend."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "kami.invalid"
    return f"<{digest}@{domain}>"


def callback_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, Stripe's scheme: the receiver
    recomputes it from the raw body and refuses a stale ``t`` (replays)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signed_json_post(
    url: str, data: dict[str, Any], *, secret: str, idempotency_key: str, user_agent: str
) -> HttpAnswer:
    """``data`` as compact JSON with sorted keys, signed (``Kami-Signature``) and carrying the
    message's ``Idempotency-Key``: what the owner's endpoints verify (the order callback, a
    notification URL)."""
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return http_post(
        url,
        body=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": user_agent,
            "Idempotency-Key": idempotency_key,
            SIGNATURE_HEADER: callback_signature(secret, int(time.time()), body),
        },
        timeout=settings.KAMI_OUTBOX_HTTP_TIMEOUT,
    )


class Channel:
    name: ClassVar[str]
    in_transaction: ClassVar[bool] = False

    def send(self, message: OutboxMessage, content: Content) -> str:
        raise NotImplementedError


class EmailChannel(Channel):
    """Any Django email backend (SMTP, or a django-anymail ESP through ``EMAIL_BACKEND``):
    text and HTML, with a Message-ID derived from the idempotency key."""

    name = MessageChannel.EMAIL

    def send(self, message: OutboxMessage, content: Content) -> str:
        mid = message_id(message.idempotency_key)
        email = EmailMultiAlternatives(
            subject=content.subject,
            body=content.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={
                **content.headers,
                "Message-ID": mid,
                "X-Kami-Message": message.idempotency_key,
            },
        )
        if content.html:
            email.attach_alternative(content.html, "text/html")
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"the mail server refused {message.recipient}") from exc
        status = getattr(email, "anymail_status", None)  # set by django-anymail's backends
        return str(getattr(status, "message_id", None) or mid)


class SmsChannel(Channel):
    name = MessageChannel.SMS

    def send(self, message: OutboxMessage, content: Content) -> str:
        provider = sms_provider()
        if provider is None:
            raise PermanentFailure("SMS is off (SMS_BACKEND is empty)")
        return provider.send(to=message.recipient, body=content.text)


class CallbackChannel(Channel):
    """The owner's endpoint: signed JSON, the idempotency key in ``Idempotency-Key``. A 2xx
    is delivered; 408, 429 and 5xx (or no answer) are retried; any other 4xx gives up."""

    name = MessageChannel.CALLBACK

    def send(self, message: OutboxMessage, content: Content) -> str:
        secret = ShopSettings.load().callback_secret
        if not secret:
            raise PermanentFailure("the shop settings have no callback secret")
        answer = signed_json_post(
            message.recipient,
            content.data,
            secret=secret,
            idempotency_key=message.idempotency_key,
            user_agent="Kami-Callback/1",
        )
        if 200 <= answer.status < 300:
            return f"HTTP {answer.status}"
        reason = f"the callback answered HTTP {answer.status}"
        if 400 <= answer.status < 500 and answer.status not in (408, 429):
            raise PermanentFailure(reason)
        raise RuntimeError(reason)


class InboxChannel(Channel):
    """The buyer's site inbox: a row, written in the recording transaction."""

    name = MessageChannel.INBOX
    in_transaction = True

    def send(self, message: OutboxMessage, content: Content) -> str:
        entry, _ = InboxMessage.objects.get_or_create(
            message=message,
            defaults={
                "order_id": message.order_id,
                "subject": content.subject[:200],
                "body": content.text,
            },
        )
        return f"inbox:{entry.pk}"


CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (EmailChannel(), SmsChannel(), CallbackChannel(), InboxChannel())
}
