""" "My orders" by email: a buyer who lost the order number asks for a link to their orders.

The page answers the same whatever happens behind it: orders or none, a link sent or not. The
link goes only to the address on the orders, through the outbox; it is a signed token
(``django.core.signing``, salted for this use) naming the email, good for ``MAX_AGE_HOURS``
after it was sent. Requests are rate limited per client IP and per email, so the form can
neither be used to probe addresses quickly nor to flood a mailbox.
"""

from __future__ import annotations

import hashlib
import secrets

from django.core import signing
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from core.errors import InvalidInput, RateLimited
from core.ratelimit import RateLimit
from orders.models import Order
from orders.outbox.models import MessageChannel, MessagePurpose
from orders.outbox.services import Draft, messages_enqueue
from orders.services import normalise_email

SALT = "kami.orders.my-orders"
MAX_AGE_HOURS = 24
MAX_AGE_SECONDS = MAX_AGE_HOURS * 3600
PER_IP = RateLimit("my-orders-ip", limit=10, window_seconds=600)
PER_EMAIL = RateLimit("my-orders-email", limit=3, window_seconds=3600)
LIST_MAX = 50


def my_orders_token(email: str) -> str:
    return signing.dumps({"e": normalise_email(email)}, salt=SALT, compress=True)


def my_orders_url(email: str) -> str:
    return reverse("my-orders-list", args=[my_orders_token(email)])


def my_orders_email(token: str) -> str | None:
    """The email a link was made for, or None if it is forged or older than a day."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    email = data.get("e") if isinstance(data, dict) else None
    return email if isinstance(email, str) and email else None


def orders_of_email(email: str) -> list[Order]:
    return list(
        Order.objects.select_related("product")
        .filter(email__iexact=normalise_email(email))
        .order_by("-created_at")[:LIST_MAX]
    )


def my_orders_request(*, email: str, ip: str | None) -> None:
    """Send the link if the address has orders; say nothing either way. Raises
    ``InvalidInput`` for something that is not an email and ``RateLimited`` over a limit."""
    email = (email or "").strip()
    try:
        validate_email(email)
    except Exception:
        raise InvalidInput(_("Enter the email address you ordered with.")) from None
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]
    for limit, key in ((PER_IP, ip or "unknown"), (PER_EMAIL, digest)):
        decision = limit.hit(key)
        if not decision.allowed:
            raise RateLimited(
                _("Too many requests: try again later."), retry_after=decision.retry_after
            )
    first = (
        Order.objects.filter(email__iexact=normalise_email(email))
        .order_by("-created_at")
        .values_list("email", flat=True)
        .first()
    )
    if first is None:
        return
    with transaction.atomic():
        messages_enqueue(
            [
                Draft(
                    purpose=MessagePurpose.MY_ORDERS_LINK,
                    channel=MessageChannel.EMAIL,
                    recipient=first,  # the address on the orders, never one typed in
                    subject=f"{digest}-{secrets.token_hex(6)}",
                )
            ]
        )
