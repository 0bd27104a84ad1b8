"""``manage.py reconcile_ledger``: check every ledger invariant; exit 1 with the differences."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from commissions.reconcile import ledger_differences


class Command(BaseCommand):
    help = "Check the commission ledger against orders and withdrawals; non-zero on differences."

    def handle(self, *args, **options) -> None:
        differences = ledger_differences()
        if differences:
            for line in differences:
                self.stderr.write(line)
            raise CommandError(f"{len(differences)} difference(s): the ledger does not reconcile.")
        self.stdout.write(self.style.SUCCESS("Ledger reconciles: no differences."))
