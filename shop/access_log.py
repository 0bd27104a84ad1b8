"""Access logs without credentials: both web servers' request lines pass through ``redact_query``
(``core.log_redaction``, the one redaction rule every log handler also applies).

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

from gunicorn.glogging import Logger as GunicornLogger

from core.log_redaction import (
    REDACTED,
    SENSITIVE_PARAMS,
    install_on_handlers,
    redact_query,
    redact_query_string,
)

__all__ = [
    "REDACTED",
    "SENSITIVE_PARAMS",
    "RedactQueryFilter",
    "RedactingGunicornLogger",
    "install_uvicorn_redaction",
    "redact_query",
    "redact_query_string",
]


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
    """gunicorn's logger with credentials redacted from the access log's URL atoms, and the
    redaction filter every ``LOGGING`` handler carries on its own error and access handlers."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install_on_handlers([*self.error_log.handlers, *self.access_log.handlers])

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
