"""Email backends that fail the way mail servers do, for the outbox's retry tests."""

from __future__ import annotations

import smtplib

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class DisconnectingEmailBackend(BaseEmailBackend):
    """A mail server that drops the connection: worth retrying."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class RefusingEmailBackend(BaseEmailBackend):
    """A mail server that refuses the recipient: retrying cannot help."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"No such user")})


class AnymailLikeBackend(LocmemBackend):
    """Like django-anymail's backends: the ESP's message id is left on ``anymail_status``."""

    def send_messages(self, email_messages):
        for message in email_messages:
            message.anymail_status = type("Status", (), {"message_id": "esp-0001"})()
        return super().send_messages(email_messages)
