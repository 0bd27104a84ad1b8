"""Risk-control writes: decisions, blocklist entries and the owner's review actions.

The review actions on the order (approve, reject and refund) are order services in
``orders.review``; ``riskrules.review`` adds the review queue's audit row to them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from orders.events import event_review_recorded
from orders.models import Order
from orders.risk import CheckoutContext
from riskrules.alerts import alert_check_risk_spike
from riskrules.defaults import DEFAULT_RULES
from riskrules.evaluation import Hit
from riskrules.models import (
    BlocklistEntry,
    ReviewAction,
    RiskDecision,
    RiskRule,
    normalise_block_value,
)

logger = logging.getLogger(__name__)


def _decision(*, hit: Hit, ctx: CheckoutContext, order: Order | None) -> RiskDecision:
    return RiskDecision(
        rule_id=hit.rule.pk,
        rule_name=hit.rule.name[:120],
        rule_kind=hit.rule.kind,
        outcome=hit.outcome,
        order=order,
        product_id=ctx.product_id,
        email=ctx.email[:254],
        client_ip=ctx.client_ip,
        message=hit.reason[:300],
        inputs=hit.inputs,
    )


def decisions_record(*, hits: list[Hit], ctx: CheckoutContext, order: Order | None) -> None:
    """Record hits against the order just created (the checkout's own transaction)."""
    RiskDecision.objects.bulk_create([_decision(hit=hit, ctx=ctx, order=order) for hit in hits])


def decision_record_block(*, hit: Hit, ctx: CheckoutContext) -> None:
    """Record a refused checkout. Called after the checkout transaction rolled back (see
    ``hooks.checkout_refused``), so the record is not undone with the refusal."""
    RiskDecision.objects.create(**_fields(_decision(hit=hit, ctx=ctx, order=None)))
    alert_check_risk_spike()


def _fields(decision: RiskDecision) -> dict:
    return {
        f.attname: getattr(decision, f.attname)
        for f in RiskDecision._meta.concrete_fields
        if not f.primary_key and f.attname != "created_at"
    }


def blocklist_add(
    *,
    kind: str,
    value: str,
    note: str = "",
    expires_at: datetime | None = None,
    created_by=None,
) -> tuple[BlocklistEntry, bool]:
    """Add (or refresh) a blocklist entry; returns ``(entry, created)``.

    An existing entry for the same value is kept, with its expiry lifted to the later one (or
    to "never"), so blocklisting twice never shortens a block.
    """
    value = normalise_block_value(kind, value)
    user = created_by if getattr(created_by, "pk", None) else None
    try:
        with transaction.atomic():
            entry = BlocklistEntry.objects.create(
                kind=kind, value=value, note=note[:200], expires_at=expires_at, created_by=user
            )
            return entry, True
    except IntegrityError:
        entry = BlocklistEntry.objects.get(kind=kind, value=value)
    if entry.expires_at is not None and (expires_at is None or expires_at > entry.expires_at):
        BlocklistEntry.objects.filter(pk=entry.pk).update(expires_at=expires_at)
        entry.expires_at = expires_at
    return entry, False


def review_record(*, order: Order, action: str, actor, result: str) -> ReviewAction:
    event_review_recorded(order, action=action, result=result, actor=actor)
    return ReviewAction.objects.create(order=order, action=action, actor=actor, result=result)


def review_blocklist_buyer(*, order_id: int, actor, kind: str) -> str:
    """Blocklist the held order's buyer (email or client IP) for future checkouts."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return "no such order"
    value = order.email if kind == BlocklistEntry.Kind.EMAIL else order.client_ip
    if not value:
        return "no client IP recorded"
    entry, created = blocklist_add(
        kind=kind, value=value, note=f"From the review of order {order.order_no}", created_by=actor
    )
    action = (
        ReviewAction.Action.BLOCK_EMAIL
        if kind == BlocklistEntry.Kind.EMAIL
        else ReviewAction.Action.BLOCK_IP
    )
    result = f"{entry.value} {'added to' if created else 'already on'} the blocklist"
    review_record(order=order, action=action, actor=actor, result=result)
    return result


def rules_seed_defaults() -> int:
    """Create any missing default rule (by name), leaving existing ones as the owner set them.
    Returns how many were created. The install does this through migration 0002."""
    created = 0
    for fields in DEFAULT_RULES:
        created += RiskRule.objects.get_or_create(name=fields["name"], defaults=fields)[1]
    return created
