"""Settings for the test suite: the real settings, pointed at PostgreSQL and Redis.

Tests run on PostgreSQL and Redis (``DATABASE_URL`` / ``REDIS_URL``, defaulting to the local
servers). If one is unreachable: under ``CI=true`` start-up fails, loudly; on a laptop the
suite falls back to SQLite / in-memory and every test marked ``postgres`` or ``redis`` is
skipped with a warning saying why (see ``tests/conftest.py``).

A ``sqlite:///`` ``DATABASE_URL`` or an empty ``REDIS_URL`` set on purpose is a choice, not a
server that is down: it is used as given, with no fallback and no CI failure (the SQLite job,
``tests/test_sqlite_job.py``, runs ``tests/sqlite/`` this way, as ``make run`` serves).
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

os.environ.setdefault("KAMI_TESTING", "1")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kami")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("KAMI_CACHE_PREFIX", "kami-test")
os.environ.setdefault("KAMI_TASK_QUEUE", "kami-test")
# Tasks run in-process after commit unless a test starts a real worker.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.pop("STRIPE_SECRET_KEY", None)
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_kami_webhook_secret")
os.environ.setdefault("EMAIL_URL", "memorymail://")
# Every dispatch batches the owner's notices (tests dispatch several times a second).
os.environ.setdefault("KAMI_NOTICES_PASS_SECONDS", "0")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


SQLITE_CHOSEN = os.environ["DATABASE_URL"].startswith("sqlite")
REDIS_CHOSEN_OFF = not os.environ["REDIS_URL"]
POSTGRES_AVAILABLE = os.environ["DATABASE_URL"].startswith("postgres") and _reachable(
    os.environ["DATABASE_URL"], 5432
)
REDIS_AVAILABLE = not REDIS_CHOSEN_OFF and _reachable(os.environ["REDIS_URL"], 6379)

missing = [
    name
    for name, ok, chosen in (
        ("PostgreSQL", POSTGRES_AVAILABLE, SQLITE_CHOSEN),
        ("Redis", REDIS_AVAILABLE, REDIS_CHOSEN_OFF),
    )
    if not ok and not chosen
]
if missing:
    if IN_CI:
        raise ImproperlyConfigured(
            f"CI=true but {' and '.join(missing)} cannot be reached "
            f"(DATABASE_URL={os.environ['DATABASE_URL']}, REDIS_URL={os.environ['REDIS_URL']})."
        )
    print(
        f"\n*** {' and '.join(missing)} unreachable: falling back; tests that need "
        f"{'/'.join(missing)} will be SKIPPED. CI would fail here. ***\n",
        file=sys.stderr,
    )
    if "PostgreSQL" in missing:
        os.environ["DATABASE_URL"] = "sqlite:///var/test-kami.sqlite3"
    if "Redis" in missing:
        os.environ["REDIS_URL"] = ""

from shop.settings import *  # noqa: E402,F403
