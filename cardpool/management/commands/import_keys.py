"""``manage.py import_keys PRODUCT_SLUG FILE``: bulk-load keys, one per line (``-`` = stdin)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cardpool.models import ImportBatch
from cardpool.services import keys_import
from shop.models import Product


class Command(BaseCommand):
    help = "Import card keys for a product: one per line, or a CSV with a 'key' column."

    def add_arguments(self, parser) -> None:
        parser.add_argument("product_slug")
        parser.add_argument("file", help="Path to the file, or - for standard input.")

    def handle(self, *args, product_slug: str, file: str, **options) -> None:
        product = Product.objects.filter(slug=product_slug).first()
        if product is None:
            raise CommandError(f"Unknown product slug '{product_slug}'.")
        if file == "-":
            text, name = sys.stdin.read(), ""
        else:
            path = Path(file)
            try:
                text = path.read_text(encoding="utf-8-sig")
            except FileNotFoundError:
                raise CommandError(f"No such file: {file}") from None
            except UnicodeDecodeError:
                raise CommandError(f"{file} is not UTF-8 text.") from None
            name = path.name
        try:
            report = keys_import(
                product=product, text=text, filename=name, source=ImportBatch.Source.CLI
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(report))
