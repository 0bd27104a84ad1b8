"""The outbox's one outbound HTTP call (the owner's callback, the SMS provider's API).

One function, so tests replace the network at exactly this point and nowhere else. Redirects
are not followed: a POST that is redirected would be re-sent as a GET without its body, and a
callback endpoint that moved is the owner's to fix.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes


class HttpUnreachable(Exception):
    """No answer at all: refused, timed out, DNS, TLS. Always worth a retry."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)

MAX_ANSWER_BYTES = 64 * 1024


def http_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer:
    """POST ``body`` to ``url`` (http or https only); any HTTP status is an answer."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url[:80]}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.read(MAX_ANSWER_BYTES))
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpAnswer(exc.code, exc.read(MAX_ANSWER_BYTES))
    except (urllib.error.URLError, OSError) as exc:
        raise HttpUnreachable(f"{type(exc).__name__}: {exc}") from None
