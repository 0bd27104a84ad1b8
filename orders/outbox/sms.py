"""SMS providers behind one interface: ``send(to, body) -> provider id``.

``SMS_BACKEND`` picks one: ``logging`` (development: the text goes to the log), ``twilio``
(Twilio's Messages REST API), or empty (no SMS: the channel is skipped in every chain).
Texts never carry keys — an SMS is neither private nor encrypted — only the order page's
address, so the log backend may show them whole.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from typing import Protocol
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orders.outbox.errors import PermanentFailure
from orders.outbox.http import http_post

logger = logging.getLogger("kami.sms")


class SmsProvider(Protocol):
    def send(self, *, to: str, body: str) -> str:
        """Hand the text to the provider; return its id for the message. Raise
        ``PermanentFailure`` when retrying cannot help (a number it refuses), anything else
        when it might."""
        ...


def mask_phone(number: str) -> str:
    return f"{number[:4]}…{number[-2:]}" if len(number) > 6 else "…"


class LoggingSms:
    """Development: log the text instead of sending it."""

    def send(self, *, to: str, body: str) -> str:
        ref = f"log-{secrets.token_hex(6)}"
        logger.info("SMS %s to %s: %s", ref, mask_phone(to), body)
        return ref


class TwilioSms:
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth.

    ``from_`` is a phone number, or a Messaging Service SID (``MG…``). Twilio answers 201 with
    the message's ``sid``; a 4xx other than 429 is a refusal of this message (bad number,
    unsubscribed recipient), so retrying it is pointless; 429 and 5xx are worth a retry.
    """

    def __init__(
        self, *, account_sid: str, auth_token: str, from_: str, api_base: str, timeout: float
    ) -> None:
        if not (account_sid and auth_token and from_):
            raise ImproperlyConfigured(
                "SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM."
            )
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_ = from_
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def send(self, *, to: str, body: str) -> str:
        sender = "MessagingServiceSid" if self.from_.startswith("MG") else "From"
        form = urlencode({"To": to, sender: self.from_, "Body": body}).encode()
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        answer = http_post(
            f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            body=form,
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            timeout=self.timeout,
        )
        try:
            data = json.loads(answer.body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if 200 <= answer.status < 300 and data.get("sid"):
            return str(data["sid"])
        reason = f"Twilio {answer.status} {data.get('code', '')}: {data.get('message', '')}"
        if 400 <= answer.status < 500 and answer.status != 429:
            raise PermanentFailure(reason.strip())
        raise RuntimeError(reason.strip())


def sms_provider() -> SmsProvider | None:
    """The provider ``SMS_BACKEND`` names, or None when SMS is off."""
    backend = settings.SMS_BACKEND
    if not backend:
        return None
    if backend == "logging":
        return LoggingSms()
    if backend == "twilio":
        return TwilioSms(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_=settings.TWILIO_FROM,
            api_base=settings.TWILIO_API_BASE,
            timeout=settings.KAMI_OUTBOX_HTTP_TIMEOUT,
        )
    raise ImproperlyConfigured(f"SMS_BACKEND must be logging, twilio or empty, not {backend!r}.")
