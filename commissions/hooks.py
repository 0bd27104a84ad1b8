"""The points where order money meets promoter money.

The checkout, delivery and refund transactions call these, so attribution and ledger entries
are written in the same transaction as what earned (or lost) them: if posting fails, the
delivery rolls back with it and the payment event is retried. The bodies live in
``commissions.attribution`` and ``commissions.services``; these names and signatures are the
contract with ``orders``.
"""

from __future__ import annotations

from commissions.attribution import order_attribute
from commissions.services import commissions_clawback_for_order, commissions_post_for_order


def attribute_order(*, order) -> None:
    """Freeze the order's attribution (promoter, upline) at checkout, in its transaction.

    ``order.ref_code`` holds the referral code the browser or API call carried.
    """
    order_attribute(order=order)


def post_commissions_for_order(*, order) -> None:
    """Post level-1/level-2 commission entries for a delivered ``order`` (same transaction)."""
    commissions_post_for_order(order=order)


def clawback_commissions_for_refund(*, order, amount: int) -> None:
    """Post clawbacks for ``amount`` (minor units) newly refunded or disputed on ``order``."""
    commissions_clawback_for_order(order=order, amount=amount)
