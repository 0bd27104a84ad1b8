"""Who may see an order's keys, and the brake on guessing.

The browser that placed an order gets a signed cookie listing it; a lookup that proves the
email or query password adds the order to the same cookie. Nobody else sees a key, and a wrong
email answers exactly like an unknown order. Failed lookups are counted per client IP
(contract §4: 30 in 10 minutes, then ``429 rate_limited`` with ``Retry-After`` for *every*
lookup, right or wrong, until the window passes) so order numbers and emails cannot be guessed.
"""

from __future__ import annotations

import hmac
import time
from functools import cache as memoize

from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from orders.models import Order
from orders.services import normalise_email
from shop.errors import RateLimited

COOKIE = "kami_orders"
COOKIE_SALT = "kami.orders.access"
COOKIE_MAX_AGE = 60 * 60 * 24 * 90
COOKIE_MAX_ORDERS = 30
LOOKUP_FAILURES_ALLOWED = 30
LOOKUP_WINDOW_SECONDS = 600


@memoize
def _dummy_password_hash() -> str:
    return make_password("kami-dummy-lookup-password")


def orders_in_cookie(request: HttpRequest) -> list[str]:
    value = request.get_signed_cookie(COOKIE, default="", salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE)
    return [no for no in value.split(",") if no]


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
    """Constant work whatever the outcome: a password is always hashed, against a dummy when
    there is no order or no password, so timing does not tell whether an order exists."""
    stored = order.query_password_hash if order is not None else ""
    password_ok = check_password(query_password or "-", stored or _dummy_password_hash())
    if order is None:
        return False
    if email and hmac.compare_digest(normalise_email(email), order.email):
        return True
    return bool(query_password and stored and password_ok)


def _failures_key(ip: str | None) -> str:
    return f"lookup-failures:{ip or 'unknown'}"


def lookup_guard(ip: str | None) -> None:
    """Raise ``RateLimited`` while this IP is over its failed-lookup budget."""
    key = _failures_key(ip)
    if (cache.get(key) or 0) >= LOOKUP_FAILURES_ALLOWED:
        reset_at = cache.get(f"{key}:reset") or time.time() + LOOKUP_WINDOW_SECONDS
        raise RateLimited(
            "Too many failed lookups from your network: try again later.",
            retry_after=max(1, int(reset_at - time.time())),
        )


def lookup_failed(ip: str | None) -> None:
    """Count a failed lookup atomically (cache ``incr``); the window opens at the first one."""
    key = _failures_key(ip)
    if cache.add(key, 1, LOOKUP_WINDOW_SECONDS):
        cache.set(f"{key}:reset", time.time() + LOOKUP_WINDOW_SECONDS, LOOKUP_WINDOW_SECONDS)
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        lookup_failed(ip)


def order_lookup(
    *, order_no: str, email: str = "", query_password: str = "", ip: str | None
) -> Order | None:
    """The order if the credentials match, else None (and the failure is counted)."""
    lookup_guard(ip)
    order = (
        Order.objects.select_related("product").filter(order_no=order_no.strip().upper()).first()
    )
    if credentials_match(order, email=email, query_password=query_password):
        return order
    lookup_failed(ip)
    return None
