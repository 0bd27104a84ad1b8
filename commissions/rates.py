"""Which rate applies to a commission, and how much it comes to.

Priority, first match wins: promoter × product override > product > the promoter's tier >
the shop default. A rate is a percentage of the order or a fixed amount per unit, optionally
capped per order. One rounding rule: half up, to the minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q

from commissions.models import CommissionRule, CommissionSettings, Promoter


@dataclass(frozen=True)
class Rate:
    source: str  # "promoter_product" | "product" | "tier" | "default"
    percent: Decimal | None = None
    fixed_per_unit: int | None = None
    cap_per_order: int | None = None

    def amount_for(self, *, base: int, quantity: int) -> int:
        """Commission in minor units on ``base`` minor units for ``quantity`` units."""
        if self.percent is not None:
            value = int((Decimal(base) * self.percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
        else:
            value = int(self.fixed_per_unit or 0) * quantity
        if self.cap_per_order is not None:
            value = min(value, self.cap_per_order)
        return max(value, 0)


def _rate(rule: CommissionRule, source: str) -> Rate:
    return Rate(
        source=source,
        percent=rule.percent,
        fixed_per_unit=rule.fixed_per_unit,
        cap_per_order=rule.cap_per_order,
    )


def rate_resolve(
    *,
    earner: Promoter,
    product_id: int,
    level: int,
    settings: CommissionSettings,
    product_rules: list[CommissionRule] | None = None,
) -> Rate:
    """The rate ``earner`` gets at ``level`` for an order of ``product_id``.

    ``product_rules`` are the product's rules already read for every earner of the order
    (``product_rules_for``), so a delivery reads them once, not once per level.
    """
    if product_rules is None:
        product_rules = product_rules_for(product_id=product_id, earner_ids=[earner.pk])
    rules = [rule for rule in product_rules if rule.level == level]
    for rule in rules:
        if rule.promoter_id == earner.pk:
            return _rate(rule, "promoter_product")
    for rule in rules:
        if rule.promoter_id is None:
            return _rate(rule, "product")
    if earner.tier_id:
        tier_rule = CommissionRule.objects.filter(level=level, tier_id=earner.tier_id).first()
        if tier_rule is not None:
            return _rate(tier_rule, "tier")
    default = settings.level1_percent if level == 1 else settings.level2_percent
    return Rate(source="default", percent=default)


def product_rules_for(*, product_id: int, earner_ids: list[int]) -> list[CommissionRule]:
    """The product's rules that may apply to these earners (their own and everyone's)."""
    return list(
        CommissionRule.objects.filter(product_id=product_id).filter(
            Q(promoter_id__in=earner_ids) | Q(promoter__isnull=True)
        )
    )
