"""Evaluating the owner's rules against one checkout. Reads only: recording is in services.

Each kind of rule is one small function returning a ``Hit`` when it fires. Rules run in the
owner's order; the first ``block`` stops the evaluation (the checkout is refused, later rules
have nothing left to decide). ``hold`` and ``flag`` hits all count: each is a reason.

Two messages per hit: ``buyer_message`` names the limit the buyer ran into ("at most 3 orders
per 10 minutes from your network") and never the rule's name, key or thresholds beyond that;
``reason`` is for the owner and the audit, and says exactly what was seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from orders.risk import CheckoutContext
from riskrules.disposable_domains import DISPOSABLE_DOMAINS
from riskrules.models import BlocklistEntry, RiskRule, RuleAction
from riskrules.selectors import (
    blocklist_match,
    email_domains,
    product_average_order,
    rules_in_force,
    velocity_seen,
)

DEFAULT_BASELINE_DAYS = 7
DEFAULT_MIN_BASELINE_ORDERS = 5


@dataclass(frozen=True)
class Hit:
    rule: RiskRule
    outcome: str
    buyer_message: str
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


def _minutes(n: int) -> str:
    if n % 1440 == 0:
        days = n // 1440
        return "day" if days == 1 else f"{days} days"
    if n % 60 == 0:
        hours = n // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return "minute" if n == 1 else f"{n} minutes"


_WHO = {
    RiskRule.Key.IP: "from your network",
    RiskRule.Key.EMAIL: "for this email address",
    RiskRule.Key.IP_PRODUCT: "of this product from your network",
    RiskRule.Key.EMAIL_PRODUCT: "of this product for this email address",
}


def check_velocity(rule: RiskRule, ctx: CheckoutContext, now: datetime) -> Hit | None:
    window = rule.window_minutes or 1
    seen = velocity_seen(
        key=rule.key,
        measure=rule.measure,
        since=now - timedelta(minutes=window),
        product_id=ctx.product_id,
        email=ctx.email,
        client_ip=ctx.client_ip,
    )
    if seen is None or rule.limit is None:
        return None
    units = rule.measure == RiskRule.Measure.UNITS
    would_be = seen + (ctx.quantity if units else 1)
    if would_be <= rule.limit:
        return None
    noun = "keys" if units else "orders"
    limit_noun = noun if rule.limit != 1 else noun[:-1]
    return Hit(
        rule=rule,
        outcome=rule.action,
        buyer_message=(
            f"Too many orders {_WHO.get(rule.key, '')}: at most {rule.limit} {limit_noun} per "
            f"{_minutes(window)}. Please try again later."
        ),
        reason=(
            f"{rule.name}: {would_be} {noun} in {window} min by {rule.get_key_display()} "
            f"(limit {rule.limit})"
        ),
        inputs={
            "key": rule.key,
            "measure": rule.measure,
            "window_minutes": window,
            "limit": rule.limit,
            "seen": seen,
            "would_be": would_be,
        },
    )


def check_amount_anomaly(rule: RiskRule, ctx: CheckoutContext, now: datetime) -> Hit | None:
    days = rule.baseline_days or DEFAULT_BASELINE_DAYS
    min_orders = (
        rule.min_baseline_orders
        if rule.min_baseline_orders is not None
        else DEFAULT_MIN_BASELINE_ORDERS
    )
    average, n = product_average_order(product_id=ctx.product_id, since=now - timedelta(days=days))
    if average is None or n < max(min_orders, 1):
        return None  # the floor: too little history to call anything unusual
    k = rule.multiplier or Decimal("3")
    threshold = max(float(k) * average, float(rule.floor_amount or 0))
    if ctx.amount <= threshold:
        return None
    return Hit(
        rule=rule,
        outcome=rule.action,
        buyer_message="This order is larger than the shop accepts at once: please order less.",
        reason=(
            f"{rule.name}: amount {ctx.amount} is over {k} × the {days}-day average "
            f"order of {average:.0f} ({n} orders)"
        ),
        inputs={
            "amount": ctx.amount,
            "average": round(average, 2),
            "baseline_orders": n,
            "baseline_days": days,
            "multiplier": str(k),
            "threshold": round(threshold, 2),
        },
    )


def check_quantity_cap(rule: RiskRule, ctx: CheckoutContext, now: datetime) -> Hit | None:
    if rule.limit is None or ctx.quantity <= rule.limit:
        return None
    return Hit(
        rule=rule,
        outcome=rule.action,
        buyer_message=f"At most {rule.limit} keys per order.",
        reason=f"{rule.name}: {ctx.quantity} keys in one order (cap {rule.limit})",
        inputs={"quantity": ctx.quantity, "limit": rule.limit},
    )


_BLOCKED_MESSAGE = {
    BlocklistEntry.Kind.EMAIL: "Orders for this email address are not accepted.",
    BlocklistEntry.Kind.DOMAIN: "Orders for this email domain are not accepted.",
    BlocklistEntry.Kind.NETWORK: "Orders from your network are not accepted.",
}


def check_blocklist(rule: RiskRule, ctx: CheckoutContext, now: datetime) -> Hit | None:
    entry = blocklist_match(email=ctx.email, client_ip=ctx.client_ip, now=now)
    if entry is None:
        return None
    return Hit(
        rule=rule,
        outcome=rule.action,
        buyer_message=_BLOCKED_MESSAGE[entry.kind],
        reason=f"{rule.name}: {entry}" + (f" ({entry.note})" if entry.note else ""),
        inputs={"entry": entry.pk, "kind": entry.kind, "value": entry.value},
    )


def check_disposable_email(rule: RiskRule, ctx: CheckoutContext, now: datetime) -> Hit | None:
    domain = next((d for d in email_domains(ctx.email) if d in DISPOSABLE_DOMAINS), None)
    if domain is None:
        return None
    return Hit(
        rule=rule,
        outcome=rule.action,
        buyer_message="Disposable email addresses are not accepted: use a permanent one.",
        reason=f"{rule.name}: disposable domain {domain}",
        inputs={"domain": domain},
    )


CHECKS: dict[str, Callable[[RiskRule, CheckoutContext, datetime], Hit | None]] = {
    RiskRule.Kind.VELOCITY: check_velocity,
    RiskRule.Kind.AMOUNT_ANOMALY: check_amount_anomaly,
    RiskRule.Kind.QUANTITY_CAP: check_quantity_cap,
    RiskRule.Kind.BLOCKLIST: check_blocklist,
    RiskRule.Kind.DISPOSABLE_EMAIL: check_disposable_email,
}


def evaluate_checkout(
    *, ctx: CheckoutContext, rules: list[RiskRule] | None = None, now: datetime | None = None
) -> list[Hit]:
    """The hits of the rules in force for this checkout, in evaluation order, up to and
    including the first block."""
    now = now or timezone.now()
    hits: list[Hit] = []
    for rule in rules_in_force() if rules is None else rules:
        if rule.product_id is not None and rule.product_id != ctx.product_id:
            continue
        check = CHECKS.get(rule.kind)
        hit = check(rule, ctx, now) if check else None
        if hit is None:
            continue
        if rule.buyer_message and hit.outcome == RuleAction.BLOCK:
            hit = Hit(hit.rule, hit.outcome, rule.buyer_message, hit.reason, hit.inputs)
        hits.append(hit)
        if hit.outcome == RuleAction.BLOCK:
            break
    return hits
