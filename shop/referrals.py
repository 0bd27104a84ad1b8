"""``?ref=CODE`` on any storefront URL: remember the promoter in a first-party cookie.

Last click wins for the attribution window (30 days). The promoters issue adds the click log,
first-click mode and self-referral checks on top of this cookie.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

REF_COOKIE = "kami_ref"
REF_SALT = "kami.ref"
REF_WINDOW_SECONDS = 30 * 24 * 3600
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def referral_code(request: HttpRequest) -> str:
    """The promoter code this browser was referred by, within the window, else ``""``."""
    fresh = request.GET.get("ref", "")
    if _CODE.match(fresh):
        return fresh.upper()
    return request.get_signed_cookie(
        REF_COOKIE, default="", salt=REF_SALT, max_age=REF_WINDOW_SECONDS
    )


class ReferralMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        code = request.GET.get("ref", "")
        if _CODE.match(code) and not request.path.startswith(("/api/", "/admin/")):
            response.set_signed_cookie(
                REF_COOKIE,
                code.upper(),
                salt=REF_SALT,
                max_age=REF_WINDOW_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response
