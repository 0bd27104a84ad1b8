"""Signed links in follow-ups: the one-click unsubscribe (per email, never expires: RFC 8058
asks that it keep working) and the survey (per order, for 60 days). A token is a capability:
whoever holds it may do exactly that one thing, so neither view needs a session or CSRF."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE_SALT = "kami.followups.unsubscribe"
SURVEY_SALT = "kami.followups.survey"
SURVEY_MAX_AGE = 60 * 24 * 3600


def unsubscribe_token(identity: str) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object(identity, compress=True)


def unsubscribe_identity(token: str) -> str | None:
    try:
        value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    return value if isinstance(value, str) and value else None


def unsubscribe_url(identity: str) -> str:
    return f"{settings.SITE_URL}{reverse('unsubscribe', args=[unsubscribe_token(identity)])}"


def survey_token(order_no: str) -> str:
    return signing.TimestampSigner(salt=SURVEY_SALT).sign(order_no)


def survey_order_no(token: str) -> str | None:
    try:
        return signing.TimestampSigner(salt=SURVEY_SALT).unsign(token, max_age=SURVEY_MAX_AGE)
    except signing.BadSignature:
        return None


def survey_url(order_no: str) -> str:
    return f"{settings.SITE_URL}{reverse('survey', args=[survey_token(order_no)])}"
