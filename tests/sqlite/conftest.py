"""The SQLite job's database: a file in WAL mode with IMMEDIATE transactions, as ``make run``'s.

Django's default SQLite test database lives in memory, shared between threads through one cache
with table locks, which is not what a new user's shop runs on. The file lives in the job's
``KAMI_VAR_DIR``; ``shop/settings.py`` gives every connection the WAL and IMMEDIATE options.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.exit(
            "tests/sqlite/ runs on SQLite only: start it through tests/test_sqlite_job.py",
            returncode=2,
        )
    database.setdefault("TEST", {})["NAME"] = str(Path(settings.VAR_DIR) / "test-kami.sqlite3")
