"""Who may see an order's keys, and the brake on guessing.

The browser that placed an order gets a signed cookie listing it; a lookup that proves the
email or query password adds the order to the same cookie. Nobody else sees a key, and a wrong
email answers exactly like an unknown order. Failed lookups are counted per client IP
(contract §4: 30 in 10 minutes, then ``429 rate_limited`` with ``Retry-After`` for *every*
lookup, right or wrong, until the window passes) so order numbers and emails cannot be guessed.
Every lookup takes a slot in ``LOOKUP_FAILURES`` (``core.ratelimit``) *before* its credentials
are checked and a successful one gives it back, so however many guesses arrive at once, at most
30 per window are ever evaluated and failed.

Checking credentials hashes nothing slow. An email is compared (normalised, constant time)
without any hashing; a query password costs one keyed HMAC (``orders.query_passwords``),
computed against a dummy when the order does not exist or has no password, so "unknown order"
and "wrong email/password" take the same time. Orders from before the HMAC still store a
PBKDF2 hash, which cannot be migrated (one-way): it is checked the slow way and, on the first
successful lookup, rewritten in place as the HMAC. That upgrade is the migration.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from core.errors import RateLimited
from core.ratelimit import RateLimit
from orders.models import Order
from orders.query_passwords import DUMMY_HASH, query_password_hash, query_password_matches
from orders.services import normalise_email

COOKIE = "kami_orders"
COOKIE_SALT = "kami.orders.access"
COOKIE_MAX_AGE = 60 * 60 * 24 * 90
COOKIE_MAX_ORDERS = 30
# Failed lookups per client IP and window (contract §4).
LOOKUP_FAILURES = RateLimit("order-lookup-failures", limit=30, window_seconds=600)
# What an email is compared against when there is no order: the same work as a real miss.
_DUMMY_EMAIL = "no-order@kami.invalid"


def orders_in_cookie(request: HttpRequest) -> list[str]:
    value = request.get_signed_cookie(COOKIE, default="", salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE)
    return [no for no in (value or "").split(",") if no]


def orders_in_cookie_value(raw: str | None) -> list[str]:
    """The orders a raw ``kami_orders`` cookie value grants, read exactly as the pages read it
    (``get_signed_cookie``); for callers with cookies but no request (the order's socket)."""
    if not raw:
        return []
    request = HttpRequest()
    request.COOKIES[COOKIE] = raw
    return orders_in_cookie(request)


def grant_access(request: HttpRequest, response: HttpResponse, order_no: str) -> None:
    """Remember in this browser that it may see ``order_no``."""
    known = [no for no in orders_in_cookie(request) if no != order_no]
    value = ",".join(([order_no] + known)[:COOKIE_MAX_ORDERS])
    response.set_signed_cookie(
        COOKIE,
        value,
        salt=COOKIE_SALT,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    request.COOKIES[COOKIE] = response.cookies[COOKIE].value


def may_view(request: HttpRequest, order: Order) -> bool:
    return order.order_no in orders_in_cookie(request)


def credentials_match(order: Order | None, *, email: str = "", query_password: str = "") -> bool:
    """Whether ``email`` or ``query_password`` proves ``order``; never PBKDF2 for new orders.

    The work does not depend on whether the order exists: an email is compared against a dummy
    when there is no order, and a password is HMACed once and compared against a dummy hash
    when there is no order or no stored hash. Only a legacy (pre-HMAC) stored hash is checked
    the slow way; when it matches it is upgraded in place to the HMAC form.
    """
    if email:
        known = normalise_email(order.email if order is not None else _DUMMY_EMAIL)
        # Bytes: compare_digest refuses non-ASCII str, and an email may be non-ASCII.
        if hmac.compare_digest(normalise_email(email).encode(), known.encode()):
            return order is not None
    if not query_password:
        return False
    stored = order.query_password_hash if order is not None else ""
    if not query_password_matches(query_password, stored or DUMMY_HASH):
        return False
    if order is None or not stored:  # unreachable: the dummy never matches; kept explicit
        return False
    current = query_password_hash(query_password)
    if stored != current:  # a legacy PBKDF2 hash, or an HMAC under a rotated-out SECRET_KEY
        Order.objects.filter(pk=order.pk, query_password_hash=stored).update(
            query_password_hash=current
        )
        order.query_password_hash = current
    return True


def order_lookup(
    *, order_no: str, email: str = "", query_password: str = "", ip: str | None
) -> Order | None:
    """The order if the credentials match, else None (and the failure stays counted).

    Raises ``RateLimited`` once this IP has used up its failed lookups for the window, right
    credentials or not. The slot is taken before the credentials are checked, atomically, and
    refunded on success: concurrent guesses cannot all slip in under the limit.
    """
    attempt = LOOKUP_FAILURES.hit(ip or "unknown")
    if not attempt.allowed:
        raise RateLimited(
            _("Too many failed lookups from your network: try again later."),
            retry_after=attempt.retry_after,
        )
    order = (
        Order.objects.select_related("product").filter(order_no=order_no.strip().upper()).first()
    )
    if credentials_match(order, email=email, query_password=query_password):
        LOOKUP_FAILURES.refund(attempt)
        return order
    return None
