"""``?ref=CODE`` on any storefront URL: log the click and remember the promoter in a cookie.

The cookie is first-party, signed and lives for the attribution window (30 days by default).
Last click wins by default: a new ``?ref`` replaces the cookie. With the owner's "first click"
setting an unexpired cookie is kept. Each click of a known, active promoter is logged
(time, landing page, referrer, hashed IP, user agent). Logged-in promoters' IPs are remembered
(hashed) for the self-referral check at checkout.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from commissions.attribution import click_record, ip_hash, promoter_by_code, sighting_record
from commissions.models import CommissionSettings, Promoter
from core.client_ip import client_ip

REF_COOKIE = "kami_ref"
REF_SALT = "kami.ref"
REF_WINDOW_SECONDS = 30 * 24 * 3600  # the default; CommissionSettings.attribution_window_days
SIGHTING_EVERY_SECONDS = 3600
# Reloading a referral link is one visit, not thirty clicks: one click per promoter and
# address in this window.
CLICK_EVERY_SECONDS = 30 * 60
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NOT_STOREFRONT = ("/api/", "/admin/", "/static/", "/payments/", "/healthz")


def _conf() -> CommissionSettings:
    return CommissionSettings.load()


def _window_seconds(conf) -> int:
    return int(conf.attribution_window_days) * 24 * 3600


def _cookie_code(request: HttpRequest, conf) -> str:
    return request.get_signed_cookie(
        REF_COOKIE, default="", salt=REF_SALT, max_age=_window_seconds(conf)
    )


def _fresh_code(request: HttpRequest) -> str:
    fresh = request.GET.get("ref", "")
    return fresh.upper() if _CODE.match(fresh) else ""


def referral_code(request: HttpRequest) -> str:
    """The promoter code this browser was referred by, within the window, else ``""``."""
    conf = _conf()
    fresh = _fresh_code(request)
    kept = _cookie_code(request, conf)
    if conf.attribution_model == CommissionSettings.AttributionModel.FIRST_CLICK:
        return kept or fresh
    return fresh or kept


def _first_click_of_visit(promoter_id: int, ip: str | None) -> bool:
    """True the first time this address follows this promoter's link in the window. Without
    the cache (Redis away) every click counts, as before: over-counting beats losing clicks."""
    try:
        return bool(
            cache.add(f"kami:ref-click:{promoter_id}:{ip_hash(ip)[:24]}", 1, CLICK_EVERY_SECONDS)
        )
    except Exception:
        return True


class ReferralMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        _remember_promoter_ip(request)
        code = _fresh_code(request)
        if code and not request.path.startswith(_NOT_STOREFRONT):
            self._on_referral(request, response, code)
        return response

    def _on_referral(self, request: HttpRequest, response: HttpResponse, code: str) -> None:
        conf = _conf()
        promoter = promoter_by_code(code)
        known = promoter is not None and promoter.status == Promoter.Status.ACTIVE
        user = getattr(request, "user", None)
        own = bool(user and user.is_authenticated and promoter and user.pk == promoter.user_id)
        if known and not own and _first_click_of_visit(promoter.pk, client_ip(request)):
            # a promoter trying their own link is not a visitor
            click_record(
                promoter=promoter,
                landing_path=request.get_full_path(),
                referrer=request.headers.get("Referer", ""),
                client_ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
            )
        kept = _cookie_code(request, conf)
        if kept and conf.attribution_model == CommissionSettings.AttributionModel.FIRST_CLICK:
            return
        if kept and not known:
            return  # an unknown or inactive code never displaces a real click
        # An unknown code is still remembered (checkout records it as unknown): the contract
        # promises that ?ref=CODE attributes later orders, whatever the code's state today.
        response.set_signed_cookie(
            REF_COOKIE,
            code,
            salt=REF_SALT,
            max_age=_window_seconds(conf),
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )


def _remember_promoter_ip(request: HttpRequest) -> None:
    """At most hourly per promoter and IP, so a browsing promoter costs no extra writes."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return
    ip = client_ip(request)
    if not ip:
        return
    key = f"kami:promoter-ip:{user.pk}:{ip_hash(ip)[:24]}"
    if not cache.add(key, 1, SIGHTING_EVERY_SECONDS):
        return
    promoter_id = Promoter.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
    if promoter_id is not None:
        sighting_record(promoter_id=promoter_id, client_ip=ip)
