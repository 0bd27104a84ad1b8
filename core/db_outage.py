"""A database that cannot be reached answers ``503`` with ``Retry-After``, never a bare 500.

While PostgreSQL restarts or fails over, every request that touches it raises
``OperationalError`` or ``InterfaceError`` — in a view, or in a middleware (sessions, the
referral cookie) before any view. Django turns either into a 500 at the layer where it was
raised, so no single ``process_exception`` hook sees them all. Instead a receiver of
``got_request_exception`` (sent for every uncaught exception, wherever it was raised) marks
the request, and this middleware, outermost, swaps the resulting 500 for a 503: JSON
``{code, message}`` under ``/api/`` and ``/payments/`` (the provider retries a 503), a short
page elsewhere. The page is a plain template rendered without context processors: they read
the shop settings from the database that is down.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_lazy

RETRY_AFTER_SECONDS = 10
JSON_PREFIXES = ("/api/", "/payments/")
DATABASE_ERRORS = (OperationalError, InterfaceError)
_MARK = "_kami_database_unavailable"

MESSAGE = "The shop's database cannot be reached right now. Please try again in a few seconds."
# The page's own copy, translated (the API's JSON message stays as above, like its other errors).
PAGE_MESSAGE = gettext_lazy(
    "The shop's database cannot be reached right now. Please try again in a few seconds."
)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path_info.startswith(JSON_PREFIXES):
        response = JsonResponse({"code": "unavailable", "message": MESSAGE}, status=503)
    else:
        # The buyer's language from the cookie or Accept-Language: nothing here may ask the
        # database (the locale middleware, further in, may not have run).
        with translation.override(translation.get_language_from_request(request)):
            page = render_to_string(
                "503.html",
                {
                    "message": PAGE_MESSAGE,
                    "retry_after": RETRY_AFTER_SECONDS,
                    "language": translation.get_language(),
                },
            )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_database_errors(sender: object, request: HttpRequest | None = None, **kwargs: object):
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_database_errors, dispatch_uid="kami-database-outage")


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return database_unavailable_response(request)
        return response
