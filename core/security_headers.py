"""``Permissions-Policy``, the one security header neither Django nor django-csp sets.

Django's ``SecurityMiddleware`` sends ``X-Content-Type-Options``, ``Referrer-Policy``,
``Cross-Origin-Opener-Policy`` and HSTS, ``XFrameOptionsMiddleware`` sends ``X-Frame-Options``
and django-csp the ``Content-Security-Policy``. This adds ``settings.PERMISSIONS_POLICY`` to
every response that has none yet, so no page (nor a script injected into one) can ask for the
camera, the microphone, the position or the payment sheet: the shop uses none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Permissions-Policy"


class PermissionsPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = getattr(settings, "PERMISSIONS_POLICY", "")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault(HEADER, self.policy)
        return response
