"""Query passwords: the optional secret a buyer sets at checkout to look an order up later.

Why a keyed HMAC and not PBKDF2
-------------------------------
A query password guards exactly one order, and only together with that order's number (80
random bits, see ``orders.order_numbers``), behind a per-IP limit of 30 failed lookups in 10
minutes (``orders.access``). Nobody can guess offline without the database *and*
``SECRET_KEY``, and online guessing is bounded by the rate limit, not by hash cost. So a
keyed ``HMAC-SHA256(key, password)`` compared in constant time (``hmac.compare_digest``) is
enough: it costs microseconds. PBKDF2 (Django's ``make_password``, 1,000,000 rounds, ~200 ms of
CPU) is for account passwords, which people reuse and which an attacker with a database dump
would crack offline; spending it on every order lookup was a denial-of-service lever and made
lookups ~80x slower than they need to be.

The key is derived from ``settings.SECRET_KEY`` with a purpose salt (``KEY_SALT``) through
``django.utils.crypto.salted_hmac``, so it is never the same key as sessions, signed cookies or
anything else the secret signs. A hash is stored as ``"hmac_sha256$" + hex digest`` (76
characters, within ``Order.query_password_hash``'s 128). ``SECRET_KEY_FALLBACKS`` are honoured
the way Django honours them for signing: after a key rotation old hashes still match, and a
successful lookup re-hashes with the current key.

Old orders: no data migration is possible
-----------------------------------------
Orders placed before this module store a Django password hash (``pbkdf2_sha256$…``). PBKDF2 is
one-way: the stored value cannot be turned into the HMAC without the password, so there is no
data migration. Instead ``query_password_matches`` still verifies such a legacy hash with
``check_password`` (slow, but only for those old orders), and ``orders.access`` rewrites the
stored value to the HMAC form the first time the right password is given (upgrade on successful
lookup). A legacy hash that is never looked up again simply stays as it is.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth import hashers
from django.utils.crypto import salted_hmac

from core.log_redaction import register_secret

PREFIX = "hmac_sha256$"
KEY_SALT = "kami.orders.query_password"
# Same length as a real hash but not hex, so no password can ever match it: what a lookup
# compares against when there is no order or the order has no query password.
DUMMY_HASH = PREFIX + "x" * 64


def _hash_with(password: str, secret: str | bytes) -> str:
    return PREFIX + salted_hmac(KEY_SALT, password, secret=secret, algorithm="sha256").hexdigest()


def query_password_hash(password: str) -> str:
    """The value to store for ``password``: ``"hmac_sha256$<hex HMAC-SHA256>"``."""
    register_secret(password)  # held in clear by this request: kept out of its logs
    return _hash_with(password, settings.SECRET_KEY)


def is_legacy(stored: str) -> bool:
    """True for a Django password hash (``pbkdf2_sha256$…``, ``md5$…``) from before the HMAC."""
    return bool(stored) and not stored.startswith(PREFIX)


def query_password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from.

    An HMAC hash is compared in constant time against the current key and every fallback key
    (all are computed, whatever matches). A legacy Django hash goes through ``check_password``:
    PBKDF2-slow, only for orders placed before the switch (see the module docstring).
    """
    if not password or not stored:
        return False
    register_secret(password)
    if is_legacy(stored):
        return hashers.check_password(password, stored)
    expected = stored.encode()
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    matches = [hmac.compare_digest(_hash_with(password, s).encode(), expected) for s in secrets]
    return any(matches)
