"""Settings for the test suite: the real settings, pointed at PostgreSQL and Redis.

Tests run on PostgreSQL and Redis (``DATABASE_URL`` / ``REDIS_URL``, defaulting to the local
servers). If one is unreachable: under ``CI=true`` start-up fails, loudly; on a laptop the
suite falls back to SQLite / in-memory and every test marked ``postgres`` or ``redis`` is
skipped with a warning saying why (see ``tests/conftest.py``).
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


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


POSTGRES_AVAILABLE = os.environ["DATABASE_URL"].startswith("postgres") and _reachable(
    os.environ["DATABASE_URL"], 5432
)
REDIS_AVAILABLE = _reachable(os.environ["REDIS_URL"], 6379)

if not POSTGRES_AVAILABLE or not REDIS_AVAILABLE:
    missing = [
        n for n, ok in (("PostgreSQL", POSTGRES_AVAILABLE), ("Redis", REDIS_AVAILABLE)) if not ok
    ]
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
    if not POSTGRES_AVAILABLE:
        os.environ["DATABASE_URL"] = "sqlite:///var/test-kami.sqlite3"
    if not REDIS_AVAILABLE:
        os.environ["REDIS_URL"] = ""

from shop.settings import *  # noqa: E402,F403
