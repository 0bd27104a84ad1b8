"""Locking one row of any model, the cheap way: shared by the apps' own ``locks`` modules.

Each app keeps its locks in its own ``locks.py`` (and the global order in
``orders/services.py``); what they share is how one row is fetched and locked.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def lock_one(model: type[M], column: str, value: object, *, skip_locked: bool = False) -> M | None:
    """The first row of ``model`` whose ``column`` equals ``value``, locked: its own table's
    row only, never a joined one. A plain ``SELECT … FOR UPDATE`` rather than a compiled
    queryset, because every delivery takes several of these and compiling them cost more
    Python than the database spends on them. On SQLite, which has no row locks, a plain read
    (IMMEDIATE transactions serialise writers there). ``skip_locked``: None rather than wait
    when another transaction holds the row."""
    if connection.vendor != "postgresql":
        return model._default_manager.filter(**{column: value}).first()
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"SELECT * FROM {table} WHERE {connection.ops.quote_name(column)} = %s LIMIT 1 FOR UPDATE"  # noqa: S608 - model metadata
    if skip_locked:
        sql += " SKIP LOCKED"
    return next(iter(model._default_manager.raw(sql, [value])), None)
