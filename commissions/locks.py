"""Every row lock the commissions app takes, in one place.

Ledger locks come last in the global order (payment event → order → product → card keys →
ledger, see ``orders/services.py``). Within the ledger, promoters are locked sorted by primary
key, so two transactions touching the same two promoters always queue in the same order.
"""

from __future__ import annotations

from commissions.models import Attribution, Promoter, Withdrawal


def lock_promoters(*promoter_ids: int) -> dict[int, Promoter]:
    """Lock the promoters whose balance a write depends on (withdrawal vs available balance)."""
    ids = sorted({pk for pk in promoter_ids if pk})
    return {p.pk: p for p in Promoter.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def lock_attribution(order_id: int) -> Attribution | None:
    """The order's attribution row, with its promoter and upline read (not locked) alongside."""
    return (
        Attribution.objects.select_for_update(of=("self",))
        .select_related("promoter", "upline")
        .filter(order_id=order_id)
        .first()
    )


def lock_withdrawals(withdrawal_ids: list[int]) -> list[Withdrawal]:
    return list(
        Withdrawal.objects.select_for_update()
        .filter(pk__in=sorted(set(withdrawal_ids)))
        .order_by("pk")
    )
