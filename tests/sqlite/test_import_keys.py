"""``manage.py import_keys`` on SQLite: the raw INSERT … ON CONFLICT path SQLite takes."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from cardpool.crypto import decrypt_secret
from cardpool.models import CardKey
from orders.models import Order
from tests.factories import ProductFactory
from tests.stripe_helpers import completed_event, post_event

pytestmark = pytest.mark.django_db(transaction=True)


def import_keys(*args: str) -> str:
    out = io.StringIO()
    call_command("import_keys", *args, stdout=out)
    return out.getvalue().strip()


def test_import_counts_duplicates_in_the_file_and_in_the_pool(tmp_path):
    product = ProductFactory(slug="sqlite-import")
    first = tmp_path / "keys.txt"
    first.write_text("AAA-1\nBBB-2\n\n   \nAAA-1\nCCC-3\n", encoding="utf-8")
    assert import_keys("sqlite-import", str(first)) == "imported 3, duplicates 1, skipped 2"

    second = tmp_path / "more.txt"
    second.write_text("CCC-3\nDDD-4\n", encoding="utf-8")
    assert import_keys("sqlite-import", str(second)) == "imported 1, duplicates 1, skipped 0"

    rows = CardKey.objects.filter(product=product, status=CardKey.Status.AVAILABLE)
    assert sorted(decrypt_secret(row.secret) for row in rows) == [
        "AAA-1",
        "BBB-2",
        "CCC-3",
        "DDD-4",
    ]


def test_import_from_stdin(monkeypatch):
    ProductFactory(slug="sqlite-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO("S-1\nS-2\nS-1\n"))
    assert import_keys("sqlite-stdin", "-") == "imported 2, duplicates 1, skipped 0"


def test_unknown_slug_is_an_error():
    with pytest.raises(CommandError, match="Unknown product slug 'nope'"):
        call_command("import_keys", "nope", "-")


def test_imported_keys_are_sold_through_checkout_and_payment(client, tmp_path):
    ProductFactory(slug="sqlite-sell")
    path = tmp_path / "sell.txt"
    path.write_text("SELL-A\nSELL-B\n", encoding="utf-8")
    import_keys("sqlite-sell", str(path))

    created = client.post(
        "/api/v1/orders",
        {"product": "sqlite-sell", "quantity": 2, "email": "sell@example.com"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    order = Order.objects.get(order_no=created.json()["order_no"])
    assert post_event(client, completed_event(order)).status_code == 200
    lookup = client.get(f"/api/v1/orders/{order.order_no}", {"email": "sell@example.com"})
    assert sorted(lookup.json()["keys"]) == ["SELL-A", "SELL-B"]
