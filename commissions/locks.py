"""Every row lock the commissions app takes, in one place.

Ledger locks come last in the global order (payment event → order → product → card keys →
ledger, see ``orders/services.py``). Within the ledger, promoters are locked sorted by primary
key, so two transactions touching the same two promoters always queue in the same order.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from commissions.models import Attribution, Promoter, Withdrawal
from core.locks import lock_one


def lock_promoters(*promoter_ids: int) -> dict[int, Promoter]:
    """Lock the promoters whose balance a write depends on (withdrawal vs available balance)."""
    ids = sorted({pk for pk in promoter_ids if pk})
    return {p.pk: p for p in Promoter.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def lock_attribution(order_id: int) -> Attribution | None:
    """The order's attribution row, locked, with its promoter and upline read (not locked)
    alongside. Two plain statements: every delivery of a referred order runs them."""
    attribution = lock_one(Attribution, "order_id", order_id)
    if attribution is None:
        return None
    ids = [pk for pk in (attribution.promoter_id, attribution.upline_id) if pk]
    if ids:
        promoters = {p.pk: p for p in Promoter.objects.filter(pk__in=ids)}
        attribution.promoter = promoters.get(attribution.promoter_id or 0)
        attribution.upline = promoters.get(attribution.upline_id or 0)
    return attribution


def lock_withdrawals(withdrawal_ids: list[int]) -> list[Withdrawal]:
    return list(
        Withdrawal.objects.select_for_update()
        .filter(pk__in=sorted(set(withdrawal_ids)))
        .order_by("pk")
    )


def lock_token_holder(user_id: int) -> None:
    """Serialise one user's API token mints (``commissions.api_tokens``): the user row, alone."""
    User = get_user_model()
    list(User.objects.select_for_update().filter(pk=user_id).values_list("pk"))
