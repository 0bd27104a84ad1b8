"""The console email backend without the secrets: ``EMAIL_URL=consolemail://`` (the default).

Django's console backend writes every message whole to standard output, which is the server's
log: with the default ``EMAIL_URL`` every delivery email put the buyer's card keys in the log
(a production shop that forgot ``EMAIL_URL`` logged every key it sold). This backend writes
the same messages with every secret the sending request or task knows of — the keys it
decrypted for the email, its query password, the configured secrets (``core.log_redaction``)
— replaced by ``***``. A developer sees that the email went out, to whom and what it says;
the keys themselves are on the order page the email links to.

Each part is written decoded (not as quoted-printable or base64, which Django picks for long
or non-ASCII lines), so the redaction sees the text a reader would, and so does a developer.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from email.message import Message

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend
from django.core.mail.message import EmailMessage

from core.log_redaction import redact_text

HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


def _readable(message: Message) -> str:
    lines = [
        f"{name}: {make_header(decode_header(str(message[name])))}"
        for name in HEADERS
        if message[name] is not None
    ]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "utf-8"
        text = payload.decode(charset, errors="replace") if isinstance(payload, bytes) else ""
        lines += ["", f"[{part.get_content_type()}]", text.rstrip("\n")]
    return "\n".join(lines)


class EmailBackend(DjangoConsoleBackend):
    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(f"{redact_text(_readable(message.message()))}\n")
        self.stream.write("-" * 79)
        self.stream.write("\n")
