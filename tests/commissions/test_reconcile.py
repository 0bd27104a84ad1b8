"""The ledger's reconciliation (``commissions/reconcile.py``, ``manage.py reconcile_ledger``):
clean after the real flows, and every kind of broken row reported, in code and as a process."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from commissions.models import LedgerEntry, Withdrawal
from commissions.reconcile import ledger_differences
from commissions.services import CommissionPosting, account_key, ledger_adjust, withdrawal_request
from shop.processes import database_url
from tests.commissions.factories import PromoterFactory
from tests.commissions.helpers import assert_reconciles

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_reconcile_reports_differences_and_exits_non_zero(sell, promoter):
    order = sell()
    assert_reconciles()
    # A clawback posted behind the services' back, larger than what was earned.
    LedgerEntry.objects.create(
        promoter=promoter,
        kind="clawback",
        amount=-5000,
        currency="USD",
        order=order,
        level=1,
        available_at=timezone.now(),
    )
    differences = ledger_differences()
    assert any("clawed back 5000 > earned 1000" in d for d in differences)
    err = io.StringIO()
    with pytest.raises(CommandError, match="does not reconcile"):
        call_command("reconcile_ledger", stdout=io.StringIO(), stderr=err)
    assert "clawed back 5000" in err.getvalue()


def test_reconcile_finds_a_delivered_order_whose_commissions_were_not_posted(
    sell, promoter, monkeypatch
):
    import orders.delivery as delivery

    monkeypatch.setattr(delivery, "commissions_post_for_order", lambda **kw: CommissionPosting())
    order = sell()
    assert any(
        f"{order.order_no}: delivered but commissions never posted" in d
        for d in ledger_differences()
    )


def test_reconcile_command_runs_as_a_process(sell, promoter, tmp_path):
    """The real command line exits 0 on a clean ledger (its database is the test one)."""
    sell()
    out = io.StringIO()
    call_command("reconcile_ledger", stdout=out)
    assert "no differences" in out.getvalue()


# --- Broken rows, written past every service and model guard ---------------------------------

INSERT_ENTRY = """
INSERT INTO commissions_ledgerentry
    (promoter_id, kind, amount, currency, order_id, level, withdrawal_id,
     available_at, reason, created_at, created_by_id)
VALUES (%s, %s, %s, 'USD', %s, %s, %s, %s, %s, %s, NULL)
RETURNING id
"""


def insert_entry(
    *, promoter, kind, amount, order=None, level=None, withdrawal=None, reason=""
) -> int:
    """Write a ledger row with plain SQL, past every service and model guard (as a bug or a
    hand-written fix in psql would)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_ENTRY,
            [
                promoter.pk,
                kind,
                amount,
                order.pk if order else None,
                level,
                withdrawal.pk if withdrawal else None,
                now,
                reason,
                now,
            ],
        )
        return cursor.fetchone()[0]


def bare_withdrawal(promoter, amount: int) -> Withdrawal:
    """A withdrawal row made without ``withdrawal_request`` (so without its ledger entry)."""
    return Withdrawal.objects.create(
        promoter=promoter,
        amount=amount,
        currency="USD",
        method="paypal",
        account="x@pp.com",
        account_key=account_key("paypal", "x@pp.com"),
    )


def test_reconcile_finds_a_mismatched_withdrawal_and_orphan_entries(sell, promoter):
    sell()
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    withdrawal_request(promoter=promoter, amount=2000, method="bank", account="DE89")
    unreferred = sell(ref="")
    assert_reconciles()  # the real flows leave nothing to report

    broken = bare_withdrawal(promoter, 2000)
    insert_entry(promoter=promoter, kind="withdrawal", amount=-1500, withdrawal=broken)
    # A commission on an order nobody referred, and an adjustment tied to an order.
    insert_entry(promoter=promoter, kind="commission", amount=1000, order=unreferred, level=1)
    insert_entry(promoter=promoter, kind="adjustment", amount=100, order=unreferred, reason="?")

    expected = {
        f"withdrawal {broken.pk}: ledger took 1500, amount 2000",
        f"order {unreferred.pk}: ledger entries but no posted attribution",
        "1 entries linked to the wrong kind of record",
    }
    assert set(ledger_differences()) == expected
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 difference"):
        call_command("reconcile_ledger", stdout=io.StringIO(), stderr=err)
    assert set(err.getvalue().splitlines()) == expected


def test_reconcile_finds_a_withdrawal_with_no_ledger_entry(promoter):
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    assert_reconciles()
    ghost = bare_withdrawal(promoter, 1200)
    assert ledger_differences() == [f"withdrawal {ghost.pk}: ledger took 0, amount 1200"]


def run_reconcile_process() -> subprocess.CompletedProcess:
    """``manage.py reconcile_ledger`` as a separate process, on this test's database."""
    url = database_url(connection.settings_dict)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings_test", "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "manage.py", "reconcile_ledger"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)  # committed rows, so the other process sees them
def test_reconcile_ledger_command_exits_non_zero_as_a_process():
    promoter = PromoterFactory(code="PROC")
    ledger_adjust(promoter=promoter, amount=5000, reason="Opening balance")
    clean = run_reconcile_process()
    assert clean.returncode == 0, clean.stderr
    assert "no differences" in clean.stdout

    ghost = bare_withdrawal(promoter, 1200)
    broken = run_reconcile_process()
    assert broken.returncode != 0
    assert f"withdrawal {ghost.pk}: ledger took 0, amount 1200" in broken.stderr
    assert "does not reconcile" in broken.stderr
