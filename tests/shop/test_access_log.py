"""Access logs never carry lookup credentials (issue #9): uvicorn's and gunicorn's both redact."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config as GunicornConfig

from shop.access_log import (
    RedactingGunicornLogger,
    RedactQueryFilter,
    RedactWebSocketFilter,
    install_uvicorn_redaction,
    redact_query,
    redact_query_string,
)
from shop.server import uvicorn_server
from tests.serving import free_port, http_get, serving

ROOT = Path(__file__).resolve().parents[2]
SECRET_EMAIL = "buyer.secret@example.com"
SECRET_PASSWORD = "hunter2-secret"


# --- the one redaction function -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/orders/K1?email=a@b.c", "/api/v1/orders/K1?email=***"),
        ("/api/v1/orders/K1?query_password=hunter2", "/api/v1/orders/K1?query_password=***"),
        (
            "/x?a=1&email=a%40b.c&b=2&query_password=p%26w&password=s&token=t&c=",
            "/x?a=1&email=***&b=2&query_password=***&password=***&token=***&c=",
        ),
        ("/x?EMAIL=a@b.c&Query_Password=p", "/x?EMAIL=***&Query_Password=***"),  # any case
        ("/x?e%6Dail=a@b.c", "/x?e%6Dail=***"),  # a percent-encoded name is still the name
        ("/x?email+=a@b.c", "/x?email+=***"),  # "+" decodes to a space, stripped
        ("/x?email=a@b.c#frag", "/x?email=***#frag"),
        ("https://shop.example/o?email=a@b.c&x=1", "https://shop.example/o?email=***&x=1"),
        # Nothing to hide: unchanged, byte for byte.
        ("/x?email=", "/x?email="),
        ("/x?email", "/x?email"),
        ("/x?emails=a&my_email=b&q=email=c", "/x?emails=a&my_email=b&q=email=c"),
        ("/api/v1/orders/K1", "/api/v1/orders/K1"),
        ("/x?", "/x?"),
        ("", ""),
        ("-", "-"),
    ],
)
def test_redact_query(path, expected):
    assert redact_query(path) == expected


def test_redact_query_string_takes_the_bare_query():
    assert redact_query_string("email=a@b.c&page=2") == "email=***&page=2"
    assert redact_query_string("") == ""


# --- uvicorn -------------------------------------------------------------------------------


def _access_record(path: str) -> logging.LogRecord:
    """A record as uvicorn's protocols log it (h11_impl / httptools_impl)."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 404),
        None,
    )


def test_filter_redacts_the_path_argument_for_both_formatters():
    from uvicorn.logging import AccessFormatter

    record = _access_record(f"/api/v1/orders/K1?email={SECRET_EMAIL}&x=1")
    assert RedactQueryFilter().filter(record) is True
    assert (
        record.getMessage() == '127.0.0.1:5000 - "GET /api/v1/orders/K1?email=***&x=1 HTTP/1.1" 404'
    )
    uvicorn_line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(
        record
    )
    assert "email=***&x=1" in uvicorn_line and SECRET_EMAIL not in uvicorn_line


def test_filter_leaves_other_records_alone():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "plain %s", ("x",), None
    )
    assert RedactQueryFilter().filter(record) is True and record.args == ("x",)


def test_websocket_handshake_lines_are_redacted():
    """uvicorn logs a WebSocket handshake to ``uvicorn.error`` with its query string."""
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", f"/ws/orders/K1?email={SECRET_EMAIL}"),
        None,
    )
    assert RedactWebSocketFilter().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5000 - "WebSocket /ws/orders/K1?email=***" [accepted]'


def test_install_is_idempotent():
    install_uvicorn_redaction()
    install_uvicorn_redaction()
    filters = logging.getLogger("uvicorn.access").filters
    assert sum(isinstance(f, RedactQueryFilter) for f in filters) == 1


async def _app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_uvicorn_server_logs_the_request_line_redacted(caplog, monkeypatch):
    """The server ``serve`` builds (``shop.server.uvicorn_server``), answering a real request."""
    monkeypatch.delenv("WEB_ACCESS_LOG", raising=False)
    port = free_port()
    server = uvicorn_server(_app, host="127.0.0.1", port=port)
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
            path = f"/api/v1/orders/K1?email={SECRET_EMAIL}&query_password={SECRET_PASSWORD}&x=1"
            assert http_get(port, path) == 404
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert lines, caplog.text
    assert "GET /api/v1/orders/K1?email=***&query_password=***&x=1 HTTP/1.1" in lines[0]
    assert SECRET_EMAIL not in caplog.text and SECRET_PASSWORD not in caplog.text


@pytest.mark.django_db
@pytest.mark.postgres
def test_manage_py_serve_access_log_is_redacted(tmp_path):
    """``manage.py serve`` (``make run``) end to end: the output has ``email=***``, no email."""
    log_path = tmp_path / "serve.log"
    with serving(log_path, WEB_THREADS="2", WEB_ACCESS_LOG="1", LOG_LEVEL="INFO") as process:
        path = f"/api/v1/orders/K000000NOPE?email={SECRET_EMAIL}"
        assert http_get(process.port, path) == 404
        path = f"/api/v1/orders/K000000NOPE?query_password={SECRET_PASSWORD}"
        assert http_get(process.port, path) == 404
        deadline = time.monotonic() + 10
        while "query_password=***" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    output = log_path.read_text()
    assert "GET /api/v1/orders/K000000NOPE?email=*** HTTP/1.1" in output
    assert SECRET_EMAIL not in output and SECRET_PASSWORD not in output


# --- gunicorn ------------------------------------------------------------------------------


def _gunicorn_logger(access_log_format: str | None = None) -> RedactingGunicornLogger:
    cfg = GunicornConfig()
    cfg.set("accesslog", "-")
    if access_log_format:
        cfg.set("access_log_format", access_log_format)
    return RedactingGunicornLogger(cfg)


def _environ(query: str, referer: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/orders/K1?{query}",
        "PATH_INFO": "/api/v1/orders/K1",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "curl/8",
    }


def test_gunicorn_logger_is_what_the_deploy_files_name():
    for name in ("Dockerfile", "docker-compose.yml"):
        text = (ROOT / name).read_text()
        assert "shop.access_log.RedactingGunicornLogger" in text, name
    cfg = GunicornConfig()
    cfg.set("logger_class", "shop.access_log.RedactingGunicornLogger")
    assert cfg.logger_class is RedactingGunicornLogger


def test_gunicorn_atoms_redact_every_url_and_query():
    query = f"email={SECRET_EMAIL}&page=2&query_password={SECRET_PASSWORD}"
    environ = _environ(query, f"https://shop.example/lookup?token=abc&email={SECRET_EMAIL}")
    resp = SimpleNamespace(status="404 Not Found", sent=12, headers=[])
    req = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"]), ("HOST", "shop")])
    atoms = _gunicorn_logger().atoms(resp, req, environ, timedelta(milliseconds=5))
    assert atoms["r"] == "GET /api/v1/orders/K1?email=***&page=2&query_password=*** HTTP/1.1"
    assert atoms["q"] == atoms["{query_string}e"] == "email=***&page=2&query_password=***"
    assert atoms["f"] == atoms["{referer}i"] == "https://shop.example/lookup?token=***&email=***"
    assert atoms["{raw_uri}e"] == "/api/v1/orders/K1?email=***&page=2&query_password=***"
    assert atoms["U"] == "/api/v1/orders/K1" and atoms["s"] == "404" and atoms["{host}i"] == "shop"
    assert not any(SECRET_EMAIL in str(v) or SECRET_PASSWORD in str(v) for v in atoms.values())


@pytest.mark.parametrize("access_log_format", [None, '%(r)s %(q)s "%(f)s" %({raw_uri}e)s'])
def test_gunicorn_access_line_is_redacted(caplog, access_log_format):
    logger = _gunicorn_logger(access_log_format)
    logger.access_log.propagate = True  # let caplog see gunicorn's own access logger
    environ = _environ(f"email={SECRET_EMAIL}&x=1", f"https://shop.example/?email={SECRET_EMAIL}")
    resp = SimpleNamespace(status="200 OK", sent=2, headers=[])
    req = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logger.access(resp, req, environ, timedelta(milliseconds=5))
    lines = [r.getMessage() for r in caplog.records if r.name == "gunicorn.access"]
    assert len(lines) == 1
    assert "GET /api/v1/orders/K1?email=***&x=1 HTTP/1.1" in lines[0]
    assert SECRET_EMAIL not in lines[0]
