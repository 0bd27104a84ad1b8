"""The review queue's actions: the order services of ``orders.review`` plus their audit row.

Kept apart from ``riskrules.services`` because the order services reach the payment provider
and the inbox, which the checkout-time risk hooks must not import.
"""

from __future__ import annotations

from django.db import transaction

from orders.review import order_review_approve, order_review_reject_refund
from riskrules.models import ReviewAction
from riskrules.services import review_record


def review_approve(*, order_id: int, actor) -> str:
    """Approve a held order (``orders.review``) and keep the review's audit row with it."""
    with transaction.atomic():
        outcome = order_review_approve(order_id=order_id, actor=actor)
        if outcome.acted:
            review_record(
                order=outcome.order,
                action=ReviewAction.Action.APPROVE,
                actor=actor,
                result=outcome.result,
            )
        return outcome.result


def review_reject_refund(*, order_id: int, actor) -> str:
    """Reject a held order and refund it (``orders.review``), then keep the audit row."""
    outcome = order_review_reject_refund(order_id=order_id, actor=actor)
    if outcome.acted:
        review_record(
            order=outcome.order,
            action=ReviewAction.Action.REJECT_REFUND,
            actor=actor,
            result="refund requested from the payment provider",
        )
    return outcome.result
