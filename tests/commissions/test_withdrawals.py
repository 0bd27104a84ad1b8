"""Withdrawals: limits, owner decisions one by one and in bulk, CSV, duplicate accounts, and
the owner's adjustments — through the services and through the admin."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from commissions.models import CommissionSettings, LedgerEntry, Withdrawal
from commissions.reconcile import ledger_differences
from commissions.selectors import promoter_balances
from commissions.services import (
    withdrawal_request,
    withdrawals_approve,
    withdrawals_mark_paid,
    withdrawals_reject,
)
from core.errors import InvalidInput
from tests.commissions.factories import PromoterFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def no_hold():
    conf = CommissionSettings.load()
    conf.hold_days = 0
    conf.save()


@pytest.fixture
def owner(client):
    user = get_user_model().objects.create_superuser("owner", "owner@example.com", "owner-pw-1")
    client.force_login(user)
    return user


def balances(promoter):
    b = promoter_balances(promoter_id=promoter.pk)
    return (b.pending, b.available, b.requested, b.paid)


def test_request_between_minimum_and_available(sell, promoter):
    sell(quantity=3)  # 30.00
    with pytest.raises(InvalidInput, match="minimum"):
        withdrawal_request(promoter=promoter, amount=999, method="paypal", account="p@x")
    with pytest.raises(InvalidInput, match="available"):
        withdrawal_request(promoter=promoter, amount=3001, method="paypal", account="p@x")
    withdrawal_request(promoter=promoter, amount=3000, method="paypal", account="p@x")
    assert balances(promoter) == (0, 0, 3000, 0)
    with pytest.raises(InvalidInput, match="available"):
        withdrawal_request(promoter=promoter, amount=1000, method="paypal", account="p@x")


def test_approve_then_paid_and_reject_returns_the_money(sell, promoter):
    sell(quantity=5)  # 50.00
    a = withdrawal_request(promoter=promoter, amount=2000, method="bank", account="DE89")
    b = withdrawal_request(promoter=promoter, amount=1500, method="bank", account="DE89")
    assert withdrawals_approve(withdrawal_ids=[a.pk]) == 1
    assert withdrawals_mark_paid(withdrawal_ids=[a.pk], reference="TX-1") == 1
    with pytest.raises(InvalidInput):
        withdrawals_reject(withdrawal_ids=[b.pk], reason="")
    assert withdrawals_reject(withdrawal_ids=[b.pk], reason="Account name mismatch") == 1
    assert balances(promoter) == (0, 3000, 0, 2000)
    # Decisions are one-way: a paid withdrawal cannot be rejected, a rejected one not paid.
    assert withdrawals_reject(withdrawal_ids=[a.pk], reason="oops") == 0
    assert withdrawals_mark_paid(withdrawal_ids=[b.pk], reference="TX-2") == 0
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert ledger_differences() == []


def test_admin_bulk_actions_and_csv(client, owner, sell, promoter):
    sell(quantity=5)
    ids = [
        withdrawal_request(promoter=promoter, amount=1000, method="usdt", account=f"T{i}").pk
        for i in range(3)
    ]
    url = "/admin/commissions/withdrawal/"
    client.post(url, {"action": "approve", "_selected_action": ids[:2]})
    assert set(Withdrawal.objects.values_list("status", flat=True)) == {"approved", "requested"}

    ask = client.post(url, {"action": "mark_paid", "_selected_action": ids[:2]})
    assert ask.status_code == 200 and b"Payout reference" in ask.content
    client.post(
        url, {"action": "mark_paid", "_selected_action": ids[:2], "apply": "1", "text": "BATCH-7"}
    )
    assert list(Withdrawal.objects.filter(pk__in=ids[:2]).values_list("status", "reference")) == [
        ("paid", "BATCH-7"),
        ("paid", "BATCH-7"),
    ]
    client.post(
        url, {"action": "reject", "_selected_action": ids[2:], "apply": "1", "text": "Wrong chain"}
    )
    assert Withdrawal.objects.get(pk=ids[2]).status == "rejected"
    assert balances(promoter) == (0, 3000, 0, 2000)

    export = client.post(url, {"action": "export_csv", "_selected_action": ids})
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(r["amount"], r["status"], r["account"]) for r in rows] == [
        ("10.00", "paid", "T0"),
        ("10.00", "paid", "T1"),
        ("10.00", "rejected", "T2"),
    ]
    assert ledger_differences() == []


def test_duplicate_payout_accounts_across_promoters_are_flagged(client, owner, sell, promoter):
    bob = PromoterFactory(code="BOB")
    sell(quantity=2)
    sell(ref="BOB", quantity=2)
    mine = withdrawal_request(promoter=promoter, amount=1000, method="alipay", account="138 0000")
    theirs = withdrawal_request(promoter=bob, amount=1000, method="alipay", account="1380000")
    other = withdrawal_request(promoter=bob, amount=1000, method="paypal", account="bob@pp.com")
    page = client.get("/admin/commissions/withdrawal/?duplicate=yes")
    assert page.status_code == 200
    shown = {w.pk for w in page.context["cl"].result_list}
    assert shown == {mine.pk, theirs.pk} and other.pk not in shown
    export = client.post(
        "/admin/commissions/withdrawal/",
        {"action": "export_csv", "_selected_action": [mine.pk, other.pk]},
    )
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [r["duplicate_account"] for r in rows] == ["yes", ""]


def test_csv_neutralises_formula_accounts(client, owner, sell, promoter):
    sell(quantity=2)
    w = withdrawal_request(promoter=promoter, amount=1000, method="bank", account="=HYPERLINK(1)")
    export = client.post(
        "/admin/commissions/withdrawal/", {"action": "export_csv", "_selected_action": [w.pk]}
    )
    assert "'=HYPERLINK(1)" in export.content.decode()


def test_owner_adjustment_from_the_admin_is_a_new_entry(client, owner, promoter):
    response = client.post(
        "/admin/commissions/ledgerentry/add/",
        {"promoter": promoter.pk, "amount": "-250", "reason": "Chargeback fee"},
    )
    assert response.status_code == 302, response.content
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.created_by) == ("adjustment", -250, owner)
    assert client.get(f"/admin/commissions/ledgerentry/{entry.pk}/change/").status_code == 200
    client.post(
        f"/admin/commissions/ledgerentry/{entry.pk}/change/",
        {"promoter": promoter.pk, "amount": "999", "reason": "edit"},
    )
    assert LedgerEntry.objects.get().amount == -250  # read-only: never edited


def test_admin_pages_render(client, owner, sell, promoter):
    sell()
    for model in (
        "commissionsettings",
        "promotertier",
        "commissionrule",
        "promoter",
        "referralclick",
        "attribution",
        "ledgerentry",
        "withdrawal",
        "apitoken",
    ):
        response = client.get(f"/admin/commissions/{model}/", follow=True)
        assert response.status_code == 200, model
