"""Re-encrypting the key pool under the first ``CARDKEY_ENCRYPTION_KEY``, while the shop sells.

Rotation runs beside checkouts, deliveries and lookups, so it must never make them wait,
fail or see a false "sold out", and it must never lose a key:

- **No lock held while computing.** A batch of ``(id, secret)`` is read without locks and
  re-encrypted in memory; only then is it written, in one short statement per batch.
- **Never waits for a row.** That statement locks the batch's rows ``FOR UPDATE SKIP
  LOCKED``: a row a checkout or a delivery holds right now is skipped, not waited for, so the
  rotation can never be part of a deadlock, and the delivery never waits behind more than one
  batch's statement. Skipped rows are picked up by the next pass.
- **Compare and swap.** A row is rewritten only if its ciphertext is still the one that was
  re-encrypted (``WHERE secret = old``): nothing else writes ``secret``, but two rotations run
  at once, or a stale copy, can then never put an older ciphertext back.
- **Idempotent, verified.** A row already under the first key is left alone, so running the
  command again costs reads, not writes. Passes repeat (full scans in id order) until one finds
  nothing left to do: that last pass is the proof that no row still needs the old key (rows
  written meanwhile by a process still on the old setting are caught too). After
  ``MAX_PASSES`` with rows still busy, the report says how many remain; run it again.

Readers need nothing: every process decrypts with all listed keys (``MultiFernet``), so a row
read mid-rotation decrypts whether it holds the old or the new ciphertext.

The one effect on checkouts: for the duration of one batch statement (milliseconds), that
batch's free rows are locked, and a checkout's ``SKIP LOCKED`` pick moves on to other free
rows. Batches are small (``BATCH_SIZE``) so only a product whose every free key sits in one
batch could see "sold out" for that instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connection, transaction

from cardpool.crypto import is_current, rotate_token
from cardpool.models import CardKey

BATCH_SIZE = 200
MAX_PASSES = 20
TABLE = CardKey._meta.db_table

# One statement per batch: lock the batch's rows that are free right now, and rewrite those
# whose ciphertext is still the one re-encrypted.
_SWAP = f"""
WITH v(id, old, new) AS (VALUES %s),
mine AS (
    SELECT k.id FROM {TABLE} AS k JOIN v ON k.id = v.id
    ORDER BY k.id FOR UPDATE OF k SKIP LOCKED
)
UPDATE {TABLE} AS k SET secret = v.new
FROM mine, v
WHERE k.id = mine.id AND k.id = v.id AND k.secret = v.old
RETURNING k.id
"""  # noqa: S608 - the table name is ours; the values are parameters


@dataclass(frozen=True)
class RotationReport:
    reencrypted: int
    already_current: int
    remaining: int  # rows still under an older key (busy, or left by ``max_keys``)
    passes: int

    def __str__(self) -> str:
        text = f"re-encrypted {self.reencrypted} keys ({self.already_current} already current)"
        if self.remaining:
            text += f"; {self.remaining} still under an older key: run it again"
        return text


def _swap(todo: list[tuple[int, bytes, bytes]]) -> set[int]:
    """Write ``(id, old, new)`` where the row is free now and still holds ``old``; return the
    ids written."""
    if not todo:
        return set()
    with transaction.atomic():
        if connection.vendor != "postgresql":  # SQLite: IMMEDIATE transactions serialise writers
            return {
                pk
                for pk, old, new in todo
                if CardKey.objects.filter(pk=pk, secret=old).update(secret=new)
            }
        from psycopg2.extensions import Binary
        from psycopg2.extras import execute_values

        with connection.cursor() as cursor:
            rows = execute_values(
                cursor.cursor,
                _SWAP,
                [(pk, Binary(old), Binary(new)) for pk, old, new in todo],
                template="(%s::bigint, %s::bytea, %s::bytea)",
                page_size=len(todo),
                fetch=True,
            )
    return {row[0] for row in rows}


def _pass(*, batch_size: int, budget: int | None) -> tuple[int, int, int, bool]:
    """One scan of the pool in id order: ``(rewritten, current, busy, budget_hit)``."""
    rewritten = current = busy = 0
    last_id = 0
    while True:
        rows = list(
            CardKey.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", "secret")[:batch_size]
        )
        if not rows:
            return rewritten, current, busy, False
        last_id = rows[-1][0]
        todo: list[tuple[int, bytes, bytes]] = []
        for pk, secret in rows:
            token = bytes(secret)
            if is_current(token):
                current += 1
            elif budget is None or rewritten + len(todo) < budget:
                todo.append((pk, token, rotate_token(token)))
            else:
                busy += 1  # left for a later run
        written = _swap(todo)
        rewritten += len(written)
        busy += len(todo) - len(written)
        if budget is not None and rewritten >= budget:
            return rewritten, current, busy + _count_rest(last_id), True


def _count_rest(after_id: int) -> int:
    """Rows past ``after_id`` still under an older key (a partial run's report)."""
    return sum(
        1
        for secret in CardKey.objects.filter(pk__gt=after_id).values_list("secret", flat=True)
        if not is_current(secret)
    )


def keys_reencrypt(
    *, batch_size: int = BATCH_SIZE, max_keys: int | None = None, max_passes: int = MAX_PASSES
) -> RotationReport:
    """Re-encrypt every key not yet under the first ``CARDKEY_ENCRYPTION_KEY``, safely beside
    live traffic (module docstring). ``max_keys`` stops after that many (a rotation in slices);
    the report's ``remaining`` says what is left."""
    total = 0
    already_current = 0
    busy = 0
    for passes in range(1, max_passes + 1):
        budget = None if max_keys is None else max_keys - total
        rewritten, current, busy, budget_hit = _pass(batch_size=batch_size, budget=budget)
        if passes == 1:
            already_current = current
        total += rewritten
        if budget_hit or (rewritten == 0 and busy == 0):
            return RotationReport(total, already_current, busy, passes)
        if busy and rewritten == 0:
            time.sleep(min(1.0, 0.05 * passes))  # only busy rows left: let their owners commit
    return RotationReport(total, already_current, busy, max_passes)
