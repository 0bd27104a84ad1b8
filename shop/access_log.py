"""Access logs without credentials: both web servers' request lines pass through ``redact_query``.

An order lookup may carry the buyer's ``email`` or ``query_password`` in the query string
(``GET /api/v1/orders/{order_no}?email=…``, contract §4; the ``POST …/lookup`` form keeps them
out of the URL). A server logs the URL whole, next to the order number, so anyone who can read
the logs could open the order and its keys. Both servers therefore log the URL with those
values replaced by ``***``; everything else (the path, other parameters, their order) stays.

- uvicorn (``manage.py serve``, ``shop.server``): ``RedactQueryFilter`` on the ``uvicorn.access``
  logger rewrites the path argument of each record before any handler formats it, and
  ``RedactWebSocketFilter`` does the same for the WebSocket handshake lines uvicorn writes to
  ``uvicorn.error`` (``/ws/orders/{order_no}?email=…``, contract §7).
- gunicorn (production): ``--logger-class shop.access_log.RedactingGunicornLogger`` rewrites
  every atom that carries a URL or query string (``%(r)s``, ``%(q)s``, ``%(f)s``, the
  ``RAW_URI``/``QUERY_STRING`` environ atoms, the Referer header) before the line is formatted.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger as GunicornLogger

# Query parameters whose values never reach a log (compared case-insensitively, decoded).
SENSITIVE_PARAMS = frozenset({"email", "query_password", "password", "token"})
REDACTED = "***"


def redact_query_string(query: str) -> str:
    """``query`` (without the ``?``) with the values of ``SENSITIVE_PARAMS`` replaced by ``***``."""
    if not query:
        return query
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if value and unquote_plus(name).strip().lower() in SENSITIVE_PARAMS:
            parts[i] = f"{name}{sep}{REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_query(path: str) -> str:
    """A path or URL (``/a/b?x=1&email=…#frag``) with sensitive query values replaced by ``***``."""
    if not path or "?" not in path:
        return path
    head, _, rest = path.partition("?")
    query, hash_sign, fragment = rest.partition("#")
    return f"{head}?{redact_query_string(query)}{hash_sign}{fragment}"


class RedactQueryFilter(logging.Filter):
    """For the ``uvicorn.access`` logger: redact the path in its ``(client, method, full_path,
    http_version, status)`` arguments. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            redacted = redact_query(args[2])
            if redacted != args[2]:
                record.args = args[:2] + (redacted,) + args[3:]
        return True


class RedactWebSocketFilter(logging.Filter):
    """For ``uvicorn.error``: redact the path in its ``'%s - "WebSocket %s" …'`` handshake lines
    (``(client, path)`` arguments). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) >= 2
            and isinstance(args[1], str)
            and isinstance(record.msg, str)
            and '"WebSocket %s"' in record.msg
        ):
            redacted = redact_query(args[1])
            if redacted != args[1]:
                record.args = args[:1] + (redacted,) + args[2:]
        return True


def install_uvicorn_redaction() -> None:
    """Add the filters to uvicorn's loggers (once each, however often called)."""
    for name, kind in (
        ("uvicorn.access", RedactQueryFilter),
        ("uvicorn.error", RedactWebSocketFilter),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


# gunicorn atoms holding a whole URL (path and query) and those holding only a query string.
_URL_ATOMS = ("f", "{referer}i", "{raw_uri}e", "{http_referer}e")
_QUERY_ATOMS = ("q", "{query_string}e")


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger with credentials redacted from the access log's URL atoms."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        request_line = atoms.get("r")
        if isinstance(request_line, str):
            method, sep, rest = request_line.partition(" ")
            uri, sep2, protocol = rest.rpartition(" ")
            if not sep2:  # no protocol part: "METHOD URI"
                uri, protocol = rest, ""
            atoms["r"] = f"{method}{sep}{redact_query(uri)}{sep2}{protocol}"
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_query(atoms[key])
        for key in _QUERY_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_query_string(atoms[key])
        return atoms
