"""Helpers the commissions tests share: what an order earned, the ledger reconciling, the
shop's commission settings, and the promoter dashboard as its owner sees it."""

from __future__ import annotations

import io

from django.core.management import call_command

from commissions.models import CommissionSettings, LedgerEntry, Promoter
from commissions.reconcile import ledger_differences


def entries(order, kind: str = "commission") -> dict[tuple[int, str], int]:
    """``{(level, promoter code): amount}`` of the order's ledger entries of ``kind``."""
    return {
        (e.level, e.promoter.code): e.amount
        for e in LedgerEntry.objects.filter(order=order, kind=kind).select_related("promoter")
    }


def assert_reconciles() -> None:
    assert ledger_differences() == []
    call_command("reconcile_ledger", stdout=io.StringIO())


def set_conf(**fields) -> None:
    conf = CommissionSettings.load()
    for name, value in fields.items():
        setattr(conf, name, value)
    conf.save()


def dashboard_html(client, promoter: Promoter) -> str:
    client.force_login(promoter.user)
    response = client.get("/promoter/")
    assert response.status_code == 200
    return response.content.decode()
