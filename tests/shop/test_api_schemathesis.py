"""A bounded schemathesis run against ``/api/v1/openapi.json`` (issue "Owner security and
hardening"): every operation, valid and invalid input, in process on the PostgreSQL test
database through Django's WSGI application.

Checks on every response: no 5xx (``not_a_server_error``), its status documented for the
operation (``status_code_conformance``: the 422s, and the 400/413/415 the request hardening
answers before any handler), its content type documented (``content_type_conformance``) and
its body valid against the documented schema (``response_schema_conformance``).

Bounded and repeatable: ``EXAMPLES`` cases per operation and generation mode, derandomized
(the same cases every run), no example database, no shrinking. The promoter operations get a
real Bearer token on half their cases. The Stripe webhook is not in this schema (it is not
part of the API: Stripe posts to ``/payments/stripe/webhook``), and fuzzing it would test only
the signature check, which refuses every generated body: its hostile bodies are signed and
tested in ``tests/orders/test_webhook_hardening.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from commissions.api_tokens import api_token_create
from orders.models import Order
from riskrules.models import RiskRule
from tests.commissions.factories import PromoterFactory
from tests.factories import stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

EXAMPLES = 15  # per operation and mode: 30 cases per operation
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _run(operation, mode: GenerationMode, *, headers: dict[str, str]) -> tuple[int, list[str]]:
    """``EXAMPLES`` cases of ``operation`` in ``mode``; returns (cases, failure reports)."""
    ran = 0
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def cases(case) -> None:
        nonlocal ran
        ran += 1
        sent = headers if headers and ran % 2 else {}
        response = case.call(headers=sent)
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except FailureGroup as group:  # collected: the report lists every operation that fails
            if not failures:  # the first per operation and mode: enough to fix it
                failures.append(f"{operation.label} [{mode.value}]\n{group.message}")

    try:
        cases()
    except Unsatisfiable:  # nothing to negate (an operation without parameters)
        assert mode == GenerationMode.NEGATIVE, operation.label
    return ran, failures


@contextmanager
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI application on the test database's connection: like the test client, it
    must not close that connection at the end of each request (the test client reconnects
    the signal after each of its own requests, so none may run inside)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _known_good(schema, *, token: str, username: str, order_no: str) -> list:
    """One hand-made valid case per operation, so every success schema is checked against a
    real answer (random slugs and credentials mostly find the 4xx)."""
    bearer = {"Authorization": f"Bearer {token}"}
    return [
        schema["/api/v1/products"]["GET"].Case(),
        schema["/api/v1/products/{slug}"]["GET"].Case(path_parameters={"slug": "fuzzed"}),
        schema["/api/v1/orders"]["POST"].Case(
            body={"product": "fuzzed", "quantity": 2, "email": "good@example.com"}
        ),
        schema["/api/v1/orders/{order_no}"]["GET"].Case(
            path_parameters={"order_no": order_no}, query={"email": "paid@example.com"}
        ),
        schema["/api/v1/orders/{order_no}/lookup"]["POST"].Case(
            path_parameters={"order_no": order_no}, body={"query_password": "fuzz-pass"}
        ),
        schema["/api/v1/auth/token"]["POST"].Case(
            body={"username": username, "password": "pw-Secret-123"}
        ),
        schema["/api/v1/promoter/me"]["GET"].Case(headers=bearer),
        schema["/api/v1/promoter/commissions"]["GET"].Case(headers=bearer, query={"limit": 5}),
    ]


def test_every_api_operation_survives_a_bounded_schemathesis_run(
    client, django_capture_on_commit_callbacks
):
    RiskRule.objects.filter(kind="velocity").update(enabled=False)  # let many checkouts through
    stock_product(40, slug="fuzzed", max_per_order=5)
    promoter = PromoterFactory()
    token = api_token_create(user=promoter.user)

    paid = client.post(
        "/api/v1/orders",
        {
            "product": "fuzzed",
            "quantity": 2,
            "email": "paid@example.com",
            "query_password": "fuzz-pass",
        },
        content_type="application/json",
    ).json()["order_no"]
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, completed_event(Order.objects.get(order_no=paid)))

    with wsgi_app() as app:
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
        good = _known_good(schema, token=token, username=promoter.user.username, order_no=paid)
        statuses = []
        for case in good:
            response = case.call()
            statuses.append(response.status_code)
            case.validate_response(response, checks=CHECKS)
        assert statuses == [200, 200, 201, 200, 200, 200, 200, 200], statuses
        delivered = json.loads(good[3].call().content)
        assert delivered["status"] == "delivered" and len(delivered["keys"]) == 2

        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 8

        counts: Counter[str] = Counter()
        failures: list[str] = []
        for operation in operations:
            secured = bool(operation.definition.raw.get("security"))
            headers = {"Authorization": f"Bearer {token}"} if secured else {}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                ran, found = _run(operation, mode, headers=headers)
                counts[operation.label] += ran
                failures += found
        total = sum(counts.values()) + len(good)
        print(
            f"\nschemathesis: {total} cases ({len(good)} hand-made) over {len(counts)} operations"
        )
        for label, ran in sorted(counts.items()):
            print(f"  {ran:4d}  {label}")
    assert not failures, "\n\n".join(failures)
    assert all(counts[op.label] for op in operations), counts


@pytest.mark.parametrize("query", [{"offset": 10**20}, {"offset": -1}, {"limit": 0}])
def test_commission_paging_out_of_range_is_a_documented_422(client, query):
    """Found by the run above: an offset past PostgreSQL's bigint failed the query (500)."""
    token = api_token_create(user=PromoterFactory().user)
    response = client.get(
        "/api/v1/promoter/commissions", query, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid"
