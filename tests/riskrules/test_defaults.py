"""Risk control ships on: the install seeds the default rules (migration 0002)."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps

from riskrules.models import RiskRule, RiskSettings

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

seed_migration = importlib.import_module("riskrules.migrations.0002_default_rules")


def test_install_seeds_the_default_rules_and_unseeding_removes_exactly_them():
    RiskRule.objects.all().delete()
    RiskRule.objects.create(name="owner's own", kind="quantity_cap", limit=9)
    seed_migration.seed(apps, None)
    on = {r.name: r for r in RiskRule.objects.filter(enabled=True)}
    assert set(on) == {
        "Blocklist",
        "Same IP + product: more than 3 orders in 10 minutes",
        "Amount over 3× the product's daily average order",
        "owner's own",
    }
    velocity = on["Same IP + product: more than 3 orders in 10 minutes"]
    assert (velocity.kind, velocity.key, velocity.limit, velocity.window_minutes) == (
        "velocity",
        "ip_product",
        3,
        10,
    )
    assert velocity.action == "block"
    amount = on["Amount over 3× the product's daily average order"]
    assert (amount.action, amount.multiplier, amount.min_baseline_orders) == (
        "hold",
        Decimal("3.00"),
        5,
    )
    assert RiskRule.objects.filter(enabled=False).count() == 3
    assert RiskSettings.objects.filter(pk=1).exists()

    seed_migration.seed(apps, None)  # idempotent
    assert RiskRule.objects.count() == 7
    seed_migration.unseed(apps, None)
    assert list(RiskRule.objects.values_list("name", flat=True)) == ["owner's own"]
