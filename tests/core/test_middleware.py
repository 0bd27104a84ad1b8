"""core.middleware.RequestHardeningMiddleware on bare requests: NUL bytes, body size, API JSON."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from core.middleware import DEFAULT_MAX_BODY_BYTES, RequestHardeningMiddleware, _has_nul_in_body

rf = RequestFactory()


def body_of(response) -> dict:
    return json.loads(response.content)


def run(request):
    middleware = RequestHardeningMiddleware(lambda r: HttpResponse("ok"))
    response = middleware(request)
    if response.content == b"ok":
        response = middleware.process_view(request, lambda r: None, (), {}) or response
    return response


@pytest.mark.parametrize(
    "path",
    ["/api/v1/products/x%00", "/o/ABC%00", "/?ref=A%00", "/lookup?order_no=%00", "/?a=%00b"],
)
def test_nul_in_path_or_query_is_400(path):
    response = run(rf.get(path))
    assert response.status_code == 400


def test_api_errors_are_json_and_pages_plain_text():
    api = run(rf.get("/api/v1/products/x%00"))
    assert body_of(api)["code"] == "invalid" and body_of(api)["message"]
    page = run(rf.get("/o/A%00"))
    assert page["Content-Type"].startswith("text/plain") and b"NUL" in page.content


def test_clean_requests_pass():
    assert run(rf.get("/o/ABC?ref=x%2500")).content == b"ok"  # "%00" as text is no NUL
    body = json.dumps({"a": "\\u0000"})  # an escaped backslash, then "u0000"
    assert run(rf.post("/api/v1/x", body, content_type="application/json")).content == b"ok"


@pytest.mark.parametrize(
    "body",
    ['{"username": "a\\u0000b"}', '{"u": "\\\\\\u0000"}', '{"u": "a\x00"}'],
)
def test_nul_in_json_body_is_400(body):
    response = run(rf.post("/api/v1/x", body, content_type="application/json"))
    assert response.status_code == 400 and body_of(response)["code"] == "invalid"


def test_nul_in_form_body_is_400():
    response = run(rf.post("/lookup", {"order_no": "A\x00"}))
    assert response.status_code == 400
    assert _has_nul_in_body(rf.post("/lookup", {"order_no": "A"})) is False


def test_webhook_bodies_are_not_inspected():
    request = rf.post(
        "/payments/stripe/webhook", '{"a": "\\u0000"}', content_type="application/json"
    )
    assert run(request).content == b"ok"


def test_body_over_the_limit_is_413_before_it_is_read():
    body = b"x" * (DEFAULT_MAX_BODY_BYTES + 1)
    api = run(rf.post("/api/v1/x", body, content_type="application/json"))
    assert api.status_code == 413 and body_of(api)["code"] == "too_large"
    page = run(rf.post("/lookup", body, content_type="application/x-www-form-urlencoded"))
    assert page.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_api_write_that_is_not_json_is_415(content_type):
    request = rf.generic("POST", "/api/v1/orders", b"{}", content_type=content_type)
    response = run(request)
    assert response.status_code == 415 and body_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_api_json_writes_pass(content_type):
    assert run(rf.generic("PATCH", "/api/v1/x", b"{}", content_type=content_type)).content == b"ok"


def test_api_write_without_body_or_type_passes_and_pages_take_forms():
    assert run(rf.generic("POST", "/api/v1/x", b"", content_type="")).content == b"ok"
    assert run(rf.post("/lookup", {"order_no": "A"})).content == b"ok"
