"""Key import: counting, de-duplication, encryption at rest, CSV, the CLI, and speed shape."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cardpool.crypto import decrypt_secret, fingerprint
from cardpool.models import CardKey, ImportBatch
from cardpool.services import keys_import
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_import_counts_imported_duplicates_and_skipped():
    product = ProductFactory()
    report = keys_import(product=product, text="AAA\nBBB\n\n  \nAAA\nCCC\n")
    assert (report.imported, report.duplicates, report.skipped) == (3, 1, 2)
    again = keys_import(product=product, text="CCC\nDDD\n")
    assert (again.imported, again.duplicates, again.skipped) == (1, 1, 0)
    assert CardKey.objects.filter(product=product, status="available").count() == 4
    batch = ImportBatch.objects.get(pk=again.batch_id)
    assert (batch.imported, batch.duplicates, batch.skipped) == (1, 1, 0)


def test_keys_are_encrypted_at_rest_and_fingerprinted_per_product():
    product, other = ProductFactory(), ProductFactory()
    keys_import(product=product, text="SECRET-KEY-1")
    keys_import(product=other, text="SECRET-KEY-1")  # same key, other product: allowed
    row = CardKey.objects.get(product=product)
    assert b"SECRET-KEY-1" not in bytes(row.secret)
    assert decrypt_secret(row.secret) == "SECRET-KEY-1"
    assert row.fingerprint == fingerprint("SECRET-KEY-1") != "SECRET-KEY-1"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret::text, fingerprint FROM cardpool_cardkey")
        assert all("SECRET-KEY-1" not in str(value) for value in cursor.fetchall())


def test_csv_with_key_column():
    product = ProductFactory()
    text = "serial,key,note\n1,CSV-A,x\n2,CSV-B,y\n3,,empty\n4,CSV-A,dup\n"
    report = keys_import(product=product, text=text, filename="batch.csv")
    assert (report.imported, report.duplicates, report.skipped) == (2, 1, 1)


def test_csv_without_key_column_is_refused_and_changes_nothing():
    product = ProductFactory()
    with pytest.raises(ValueError, match="no key column"):
        keys_import(product=product, text="a,b\n1,2\n", filename="x.csv")
    assert CardKey.objects.count() == 0
    assert ImportBatch.objects.count() == 0


def test_bulk_import_uses_a_bounded_number_of_queries():
    product = ProductFactory()
    text = "\n".join(f"BULK-{i:06d}" for i in range(12_000))
    with CaptureQueriesContext(connection) as queries:
        report = keys_import(product=product, text=text)
    assert report.imported == 12_000
    assert len(queries) < 30  # chunks of 5,000: never a query per key


def test_import_keys_command_reads_file_and_stdin(tmp_path, monkeypatch):
    product = ProductFactory(slug="game-key")
    path = tmp_path / "keys.txt"
    path.write_text("K1\nK2\n\nK1\n")
    out = io.StringIO()
    call_command("import_keys", "game-key", str(path), stdout=out)
    assert out.getvalue().strip() == "imported 2, duplicates 1, skipped 1"
    monkeypatch.setattr("sys.stdin", io.StringIO("K2\nK3\n"))
    out = io.StringIO()
    call_command("import_keys", "game-key", "-", stdout=out)
    assert out.getvalue().strip() == "imported 1, duplicates 1, skipped 0"
    assert product.keys.count() == 3


def test_import_keys_command_unknown_slug():
    with pytest.raises(CommandError, match="Unknown product slug"):
        call_command("import_keys", "nope", "-")
