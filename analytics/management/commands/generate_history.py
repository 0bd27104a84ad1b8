"""``manage.py generate_history --orders N``: a realistic sales history in bulk SQL (PostgreSQL).

For benchmarks and demos only: it adds orders, keys, promoters and commissions to the
configured database. See ``analytics.history`` for what the history looks like.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.history import HistoryError, history_generate
from orders.models import Order


class Command(BaseCommand):
    help = "Add N orders of realistic history (peaks, returning buyers, promoters, refunds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, required=True)
        parser.add_argument("--days", type=int, default=365, help="spread over this many days")
        parser.add_argument("--products", type=int, default=10)
        parser.add_argument("--promoters", type=int, default=8)
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument(
            "--force", action="store_true", help="add to a database that already has orders"
        )

    def handle(self, *args, **options) -> None:
        if Order.objects.exists() and not options["force"]:
            raise CommandError(
                "This database already has orders: generate_history is for a benchmark or demo "
                "database. Add --force to add history to it anyway."
            )
        try:
            result = history_generate(
                orders=options["orders"],
                days=options["days"],
                products=options["products"],
                promoters=options["promoters"],
                seed=options["seed"],
                progress=lambda line: self.stdout.write(f"  {line}"),
            )
        except HistoryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(f"generated {result.orders:,} orders in {result.seconds:.1f} s")
        )
