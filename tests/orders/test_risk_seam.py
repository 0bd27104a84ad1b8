"""Orders declares the risk seam (``orders.risk``); risk control plugs into it, not the reverse."""

from __future__ import annotations

import pytest

from orders import risk
from orders.models import OrderEvent
from riskrules import hooks
from riskrules.services import blocklist_add
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def create(client, **body):
    payload = {"product": "p", "quantity": 1, "email": "buyer@example.com"} | body
    return client.post(
        "/api/v1/orders", payload, content_type="application/json", REMOTE_ADDR="203.0.113.5"
    )


def test_riskrules_registers_itself_at_start_up():
    assert risk.risk_control() is hooks


def test_orders_work_with_no_risk_control_registered(client, monkeypatch):
    stock_product(3, slug="p")
    blocklist_add(kind="network", value="203.0.113.0/24")
    monkeypatch.setattr(risk, "_control", risk.NoRiskControl())
    response = create(client)
    assert response.status_code == 201  # nothing screens the checkout: the blocklist is risk's
    assert not OrderEvent.objects.filter(kind__startswith="risk").exists()
