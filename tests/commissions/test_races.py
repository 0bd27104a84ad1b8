"""Racing withdrawals and racing refund events, with real threads against PostgreSQL."""

from __future__ import annotations

import pytest

from commissions.models import LedgerEntry, Withdrawal
from commissions.reconcile import ledger_differences
from commissions.selectors import promoter_balances
from commissions.services import ledger_adjust, withdrawal_request
from core.errors import InvalidInput
from tests.commissions.factories import PromoterFactory
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_concurrent_withdrawals_cannot_spend_the_same_balance_twice():
    promoter = PromoterFactory(code="RACER")
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    results = run_concurrently(
        8,
        lambda i: withdrawal_request(
            promoter=promoter, amount=2000, method="paypal", account=f"r{i}@pp.com"
        ),
    )
    won = [r for r in results if isinstance(r, Withdrawal)]
    lost = [r for r in results if isinstance(r, InvalidInput)]
    assert len(won) == 2 and len(lost) == 6, results
    b = promoter_balances(promoter_id=promoter.pk)
    assert (b.available, b.requested) == (1000, 4000)
    assert LedgerEntry.objects.filter(kind="withdrawal").count() == 2
    assert ledger_differences() == []
