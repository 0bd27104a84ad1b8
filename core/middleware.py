"""Request hardening, first in ``MIDDLEWARE``: refuse malformed requests before any view (or
other middleware) looks at them.

* **NUL bytes** (``\\x00``, ``%00`` decoded, ``\\u0000`` in JSON) in the path, the query
  string or a form/JSON body: ``400``. Postgres cannot store NUL in text, so letting one
  through turned lookups into ``500``.
* **Body size**: ``413`` above ``DEFAULT_MAX_BODY_BYTES`` (1 MB), checked from
  ``Content-Length`` before the body is read. A view that needs more (the admin key import)
  is named with ``allow_large_body``. Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is only the
  ceiling above every such view, because Django counts a multipart text field (the paste)
  against it and the CSRF check reads the form before any view runs.
* **API bodies are JSON**: a ``POST``/``PUT``/``PATCH`` under ``/api/`` with a body or a
  ``Content-Type`` that is not ``application/json`` is ``415``, so a page on another site
  cannot make its visitors' browsers call the API with a "simple" form or text/plain request.

Under ``/api/`` errors are the API's JSON ``{code, message}``; elsewhere a short plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
API_PREFIX = "/api/"
# Signed provider payloads are stored and verified as sent; refusing one would only make the
# provider retry it for days.
_BODY_NUL_EXEMPT = ("/payments/",)
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# ``\u0000`` that is an escape, not an escaped backslash followed by "u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

_large_body_views: dict[str, int] = {}


def allow_large_body(view_name: str, max_bytes: int) -> None:
    """Let the view named ``view_name`` (``namespace:name``) take bodies up to ``max_bytes``."""
    _large_body_views[view_name] = max_bytes


def max_body_bytes(request: HttpRequest) -> int:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in _large_body_views:
        return _large_body_views[match.view_name]
    return DEFAULT_MAX_BODY_BYTES


def _refuse(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"code": code, "message": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _content_length(request: HttpRequest) -> int | None:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return None


def _has_nul_in_url(request: HttpRequest) -> bool:
    if "\x00" in request.path_info or "\x00" in request.path:
        return True
    query = request.META.get("QUERY_STRING", "")
    return "\x00" in query or b"\x00" in unquote_to_bytes(query.replace("+", " "))


def _has_nul_in_body(request: HttpRequest) -> bool:
    if request.content_type in _FORM_TYPES:
        return any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.POST.lists()
        )
    if request.content_type == "application/json":
        body = request.body
        return b"\x00" in body or _JSON_NUL.search(body) is not None
    return False


class RequestHardeningMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul_in_url(request):
            return _refuse(request, 400, "invalid", "The address contains a NUL character.")
        length = _content_length(request)
        if length is None:
            return _refuse(request, 400, "invalid", "The Content-Length header is not a number.")
        if (
            request.method in _WRITE_METHODS
            and request.path_info.startswith(API_PREFIX)
            and (length or request.META.get("CONTENT_TYPE"))
            and (request.content_type or "").lower() != "application/json"
        ):
            return _refuse(
                request,
                415,
                "unsupported_media_type",
                "The request body must be JSON, sent with Content-Type: application/json.",
            )
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        """After URL resolution (so the view's own limit is known), before CSRF reads a form."""
        limit = max_body_bytes(request)
        if (_content_length(request) or 0) > limit:
            return self._too_large(request, limit)
        if request.path_info.startswith(_BODY_NUL_EXEMPT):
            return None
        try:
            if _has_nul_in_body(request):
                return _refuse(
                    request, 400, "invalid", "The request body contains a NUL character."
                )
        except RequestDataTooBig:
            return self._too_large(request, limit)
        return None

    @staticmethod
    def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        return _refuse(request, 413, "too_large", f"The request body is larger than {size}.")
