"""What every benchmark here shares: Kami on a throw-away PostgreSQL database, and percentiles.

Each script sets its own environment defaults first (database name, Redis, eager tasks), then
runs inside ``throwaway_database()``, which sets Django up, creates the database with all
migrations and drops it afterwards, so a benchmark never touches real data.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def configure(**defaults: str) -> None:
    """Put the project on the path and set environment defaults for the settings module."""
    sys.path.insert(0, str(ROOT))
    base = {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/kami",
        "EMAIL_URL": "memorymail://",
        "LOG_LEVEL": "WARNING",
    }
    for name, value in (base | defaults).items():
        os.environ.setdefault(name, value)


@contextmanager
def throwaway_database() -> Iterator[None]:
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.close()
        test_name = connection.settings_dict["NAME"]
        try:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        except Exception:
            # A process that died with its connection still open keeps DROP DATABASE waiting
            # for it; PostgreSQL 13+ can end those sessions itself.
            force_drop_database(connection.settings_dict | {"NAME": test_name})


def force_drop_database(settings_dict: dict) -> None:
    """``DROP DATABASE … WITH (FORCE)`` through the ``postgres`` maintenance database."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(
        dbname="postgres",
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(settings_dict["NAME"])
                )
            )
    finally:
        conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
