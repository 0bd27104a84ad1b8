"""Writes to the key pool: bulk import and voiding. Reservation lives in reservation.py,
re-encryption (key rotation) in rotation.py.

Imports are built for 100,000 keys in seconds: fingerprints are computed in memory, existing
ones are fetched per chunk with one ``IN`` query, and rows go in as raw multi-row INSERTs
(``bulk_insert.py``) — never a query per key. The unique (product, fingerprint) constraint is
the final word on duplicates, so two racing imports still cannot add the same key twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from cardpool.bulk_insert import insert_available_keys
from cardpool.crypto import encrypt_secret, fingerprint
from cardpool.models import CardKey, ImportBatch, import_report_text
from cardpool.parsing import parse_keys
from cardpool.signals import keys_imported
from shop.models import Product

CHUNK = 5000


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    imported: int
    duplicates: int
    skipped: int

    def __str__(self) -> str:
        return import_report_text(self.imported, self.duplicates, self.skipped)


def keys_import(
    *,
    product: Product,
    text: str,
    filename: str = "",
    source: str = ImportBatch.Source.CLI,
    user=None,
) -> ImportReport:
    """Import keys from ``text`` into ``product``'s pool and report what happened."""
    parsed = parse_keys(text, filename=filename)
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            product=product, source=source, created_by=user if getattr(user, "pk", None) else None
        )
        seen: set[str] = set()
        total = len(parsed.keys)
        for start in range(0, total, CHUNK):
            chunk = parsed.keys[start : start + CHUNK]
            fresh: dict[str, str] = {}
            for key in chunk:
                fp = fingerprint(key)
                if fp in seen:
                    continue
                seen.add(fp)
                fresh[fp] = key
            existing = set(
                CardKey.objects.filter(product=product, fingerprint__in=list(fresh)).values_list(
                    "fingerprint", flat=True
                )
            )
            insert_available_keys(
                product_id=product.pk,
                batch_id=batch.pk,
                created_at=batch.created_at,
                rows=[(encrypt_secret(key), fp) for fp, key in fresh.items() if fp not in existing],
            )
        # Counting what landed (rather than what we tried) stays exact even when a concurrent
        # import won the race for some fingerprints: everything else was a duplicate.
        imported = CardKey.objects.filter(batch=batch).count()
        duplicates = total - imported
        ImportBatch.objects.filter(pk=batch.pk).update(
            imported=imported, duplicates=duplicates, skipped=parsed.skipped
        )
        if imported:
            product_id = product.pk
            transaction.on_commit(
                lambda: keys_imported.send(
                    sender=ImportBatch, product_id=product_id, count=imported
                )
            )
    return ImportReport(
        batch_id=batch.pk, imported=imported, duplicates=duplicates, skipped=parsed.skipped
    )


def keys_void(*, key_ids: list[int]) -> int:
    """Withdraw unsold keys from sale (a leaked or faulty batch). Sold keys stay the buyer's."""
    return CardKey.objects.filter(pk__in=key_ids, status=CardKey.Status.AVAILABLE).update(
        status=CardKey.Status.VOID
    )
