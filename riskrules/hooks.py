"""Risk control's answers at the seam orders declares (``orders.risk``; the checkpoints and
their contract are described there). ``RiskrulesConfig.ready`` registers this module.

Decisions go back to orders as data (``orders.risk.Decision``); orders writes the order's
history. This module records risk's own rows (decisions, alerts) and nothing of the order's.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.after_commit import enqueue_after_commit
from core.client_ip import client_network
from core.errors import Blocked, RateLimited
from core.ratelimit import RateLimit
from orders.risk import CheckoutContext, Decision
from riskrules.alerts import alert_webhook_signature_failed
from riskrules.evaluation import Hit, evaluate_checkout
from riskrules.models import BlocklistEntry, RiskSettings, RuleAction
from riskrules.selectors import blocklist_match, payment_review_facts
from riskrules.services import decision_record_block, decisions_record
from riskrules.tasks import check_risk_spike, check_stock_alerts

__all__ = [
    "CheckoutContext",
    "checkout_refused",
    "checkout_screened",
    "review_reason_for_payment",
    "screen_checkout",
    "throttle_checkout",
    "webhook_signature_failed",
]

logger = logging.getLogger(__name__)

STOCK_CHECK_EVERY_SECONDS = 60


def throttle_checkout(*, client_ip: str | None, now: float | None = None) -> None:
    """Count one checkout attempt from ``client_ip`` (its /64 for IPv6), valid or not; over the
    owner's limit (``RiskSettings``: 20 a minute by default, 0 turns it off) raise
    ``RateLimited``.

    Every attempt counts, before any work: the limit brakes scripts hoarding stock in unpaid
    orders. Counted by ``core.ratelimit`` (atomic, shared by all processes; per process while
    Redis is unreachable).
    """
    settings = RiskSettings.current()
    if not settings.checkout_rate_limit:
        return
    limit = RateLimit(
        "checkout",
        limit=settings.checkout_rate_limit,
        window_seconds=max(1, settings.checkout_rate_window_seconds),
    )
    decision = limit.hit(_throttled_client(client_ip), now=now)
    if not decision.allowed:
        raise RateLimited(
            _(
                "Too many checkouts from your network: at most %(limit)d per %(window)s. "
                "Try again in %(seconds)d seconds."
            )
            % {
                "limit": limit.limit,
                "window": _describe(limit.window_seconds),
                "seconds": decision.retry_after,
            },
            retry_after=decision.retry_after,
        )


def _throttled_client(client_ip: str | None) -> str:
    """Who the checkout limit counts: an IPv6 client is its /64 (one subscriber's range, where
    a new address costs nothing), an IPv4 client its address (neighbours in a /24 are often
    different people; the unpaid-order limit counts those per network)."""
    network = client_network(client_ip)
    if network.endswith("/64"):
        return network
    return client_ip or "unknown"


def _describe(seconds: int) -> str:
    if seconds == 60:
        return _("minute")
    if seconds % 60 == 0:
        return _("%(count)d minutes") % {"count": seconds // 60}
    return _("%(count)d seconds") % {"count": seconds}


def screen_checkout(*, ctx: CheckoutContext) -> list[Decision]:
    hits = evaluate_checkout(ctx=ctx)
    blocking = next((hit for hit in hits if hit.outcome == RuleAction.BLOCK), None)
    if blocking is not None:
        raise RiskBlocked(blocking.buyer_message, hit=blocking)
    return [
        Decision(
            outcome=str(hit.outcome),
            reason=hit.reason,
            data={"rule": hit.rule.pk, **hit.inputs},
            detail=hit,
        )
        for hit in hits
    ]


class RiskBlocked(Blocked):
    """``Blocked`` that remembers which rule fired, for the audit record."""

    def __init__(self, message: str, *, hit: Hit) -> None:
        super().__init__(message)
        self.hit = hit


def checkout_refused(*, ctx: CheckoutContext, error: Exception) -> None:
    """The checkout was refused and its transaction rolled back: record the block now, so the
    audit keeps it (inside the transaction it would have been rolled back with the rest)."""
    if isinstance(error, RiskBlocked):
        decision_record_block(hit=error.hit, ctx=ctx)


def checkout_screened(*, order, ctx: CheckoutContext, decisions: list[Decision]) -> None:
    """Record the decisions against the order just created (orders notes them itself)."""
    hits: list[Hit] = [decision.detail for decision in decisions]
    if hits:
        decisions_record(hits=hits, ctx=ctx, order=order)
        if any(hit.outcome == RuleAction.HOLD for hit in hits):
            enqueue_after_commit(check_risk_spike)
    _check_stock_soon(product_id=ctx.product_id)


def _check_stock_soon(*, product_id: int) -> None:
    """After the checkout commits, look at the product's stock for alerts — at most once a
    minute per product. The cache is asked only after the commit, never while the checkout
    holds its locks, and its failure never costs the checkout (the periodic check still runs).
    """

    def after_commit() -> None:
        try:
            if cache.add(f"risk-stock-check:{product_id}", 1, STOCK_CHECK_EVERY_SECONDS):
                check_stock_alerts.delay(product_id)
        except Exception:
            logger.warning("stock alert check for product %s not queued", product_id)

    transaction.on_commit(after_commit)


def review_reason_for_payment(*, order) -> str | None:
    """Why this paid order must wait for the owner: the holds decided at its checkout, or
    its buyer was blocklisted after checking out (e.g. from the review of another order)."""
    reasons, blocklist_in_force = payment_review_facts(order_id=order.pk)
    entry = (
        blocklist_match(
            email=order.email,
            client_ip=order.client_ip,
            now=order.paid_at or timezone.now(),
            only_if_rule_enabled=True,
        )
        if blocklist_in_force
        else None
    )
    if entry is not None:
        what = "email" if entry.kind != BlocklistEntry.Kind.NETWORK else "network"
        reasons.append(f"The buyer's {what} is on the blocklist ({entry.value})")
    return "; ".join(reasons) or None


def webhook_signature_failed(*, client_ip: str | None) -> None:
    alert_webhook_signature_failed(client_ip=client_ip)
