"""The points where order money meets promoter money.

The delivery and refund transactions call these, so commission entries are written in the same
transaction as what earned (or lost) them. Until promoter commissions exist (issue #3) there is
nothing to post: the functions are the seam, called from the right places and tested as such.
"""

from __future__ import annotations


def attribute_order(*, order) -> None:
    """Freeze the order's attribution (promoter, upline) at checkout, in its transaction.

    ``order.ref_code`` holds the referral code the browser or API call carried.
    """
    return None


def post_commissions_for_order(*, order) -> None:
    """Post level-1/level-2 commission entries for a delivered ``order`` (same transaction)."""
    return None


def clawback_commissions_for_refund(*, order, amount: int) -> None:
    """Post clawbacks for ``amount`` (minor units) newly refunded or disputed on ``order``."""
    return None
