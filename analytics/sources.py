"""Where buyers come from, and how often product pages are seen: recorded cheaply on the way.

``VisitMiddleware`` remembers the visit's source — ``utm_source`` or an outside site's
``Referer`` on a storefront page — in a cookie for 30 days (last touch wins), and puts it
where the checkout of the same request can find it; the order's ``post_save`` then records it
as ``OrderSource`` in the checkout's own transaction. Promoter referrals are left to
commissions (``Attribution``): the channel report reads both.

Product page views add one to a striped hourly counter: one small upsert per view, spread over
``ProductViewHour.STRIPES`` rows so that visitors of a popular product do not queue on one row.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from analytics.models import OrderSource, ProductViewHour

logger = logging.getLogger(__name__)

SOURCE_COOKIE = "kami_src"
SOURCE_MAX_AGE = 30 * 24 * 3600
_VALUE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_NOT_STOREFRONT = ("/api/", "/admin/", "/static/", "/payments/", "/healthz", "/ws/")
PRODUCT_PAGE = "product-page"

#: The source of the visit the current request belongs to: ``(kind, value)`` or None.
current_source: ContextVar[tuple[str, str] | None] = ContextVar("kami_source", default=None)


def _clean(value: str) -> str:
    value = (value or "").strip().lower()[:100]
    return value if _VALUE.match(value) else ""


def source_from_request(request: HttpRequest) -> tuple[str, str] | None:
    """A source this request itself brings: ``utm_source``, else an outside ``Referer``."""
    if request.method != "GET" or request.path.startswith(_NOT_STOREFRONT):
        return None
    utm = _clean(request.GET.get("utm_source", ""))
    if utm:
        return (OrderSource.Kind.UTM, utm)
    host = (urlsplit(request.headers.get("Referer", "")).hostname or "").lower()
    own = (request.get_host().rsplit(":", 1)[0] or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if host and host != own and host != own.removeprefix("www."):
        value = _clean(host)
        if value:
            return (OrderSource.Kind.REFERRER, value)
    return None


def source_from_cookie(request: HttpRequest) -> tuple[str, str] | None:
    kind, _, value = request.COOKIES.get(SOURCE_COOKIE, "").partition(":")
    value = _clean(value)
    if kind in OrderSource.Kind.values and value:
        return (kind, value)
    return None


def order_source_record(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """``post_save`` of an order: record the visit's source with the new order."""
    source = current_source.get()
    if created and not raw and source is not None:
        OrderSource.objects.create(order_id=instance.pk, kind=source[0], value=source[1])


def product_view_record(*, slug: str, now: datetime | None = None) -> None:
    """One more view of the product ``slug`` in this hour (a miss is logged, never raised)."""
    hour = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    table = ProductViewHour._meta.db_table
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (hour, product_id, stripe, views) "  # noqa: S608
                "SELECT %s, id, %s, 1 FROM shop_product WHERE slug = %s "
                "ON CONFLICT (hour, product_id, stripe) "
                f"DO UPDATE SET views = {table}.views + 1",
                [
                    connection.ops.adapt_datetimefield_value(hour),
                    random.randrange(ProductViewHour.STRIPES),  # noqa: S311
                    slug,
                ],
            )
    except DatabaseError:
        logger.warning("product view of %s not counted", slug, exc_info=True)


class VisitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fresh = source_from_request(request)
        token = current_source.set(fresh or source_from_cookie(request))
        try:
            response = self.get_response(request)
        finally:
            current_source.reset(token)
        if fresh is not None:
            response.set_cookie(
                SOURCE_COOKIE,
                f"{fresh[0]}:{fresh[1]}",
                max_age=SOURCE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        match = getattr(request, "resolver_match", None)
        if (
            request.method == "GET"
            and response.status_code == 200
            and match is not None
            and match.url_name == PRODUCT_PAGE
        ):
            product_view_record(slug=match.kwargs.get("slug", ""))
        return response
