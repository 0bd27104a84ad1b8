"""A database that cannot be reached answers 503 with Retry-After — JSON ``{code, message}``
on the API and the webhook, a short page elsewhere — wherever the error is raised, with DEBUG
on or off. (A real PostgreSQL stopped mid-run: tests/faults/test_postgres_faults.py.)"""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from tests.factories import stock_product
from tests.stripe_helpers import WEBHOOK_URL

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def lost(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.fixture
def client():
    return Client(raise_request_exception=False)  # as a real server: the answer, not the error


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def assert_json_503(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    body = response.json()
    assert body["code"] == "unavailable" and body["message"]


def test_the_api_answers_503_json(client, monkeypatch, debug):
    monkeypatch.setattr("shop.api.products_on_sale", lost)
    assert_json_503(client.get("/api/v1/products"))


def test_the_webhook_answers_503_json_so_the_provider_retries(client, monkeypatch, debug):
    monkeypatch.setattr("orders.views.payment_event_receive", lost)
    response = client.post(WEBHOOK_URL, data=b"{}", content_type="application/json")
    assert_json_503(response)


def test_pages_answer_a_friendly_503_page(client, monkeypatch, debug):
    monkeypatch.setattr("shop.views.products_on_sale", lost)
    response = client.get("/")
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert response["Content-Type"].startswith("text/html")
    assert b"Back in a moment" in response.content and b"Traceback" not in response.content


def test_an_error_raised_in_a_middleware_is_a_503_too(client, monkeypatch, debug):
    stock_product(1, slug="p")

    def closed(*args, **kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr("commissions.middleware._conf", closed)
    response = client.get("/p/p?ref=DEMO")
    assert response.status_code == 503 and response["Retry-After"].isdigit()


def test_other_errors_stay_500(client, monkeypatch):
    def bug(*args, **kwargs):
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr("shop.views.products_on_sale", bug)
    assert client.get("/").status_code == 500


def test_the_outage_page_speaks_the_buyers_language_without_the_database():
    from django.test import RequestFactory

    from core.db_outage import database_unavailable_response

    request = RequestFactory().get("/p/x", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    page = database_unavailable_response(request).content.decode()
    assert 'lang="zh-hans"' in page and "马上回来" in page
    english = database_unavailable_response(RequestFactory().get("/p/x")).content.decode()
    assert 'lang="en"' in english and "Back in a moment" in english
