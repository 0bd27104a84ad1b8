"""Encryption at rest and de-duplication fingerprints for card keys.

``CARDKEY_ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas: the first
encrypts, all decrypt (``MultiFernet``), so rotation is "prepend a new key, run
``manage.py rotate_card_keys``, drop the old key". Fingerprints are an HMAC-SHA256 of the
normalised key under a key that must *not* rotate with encryption (or de-duplication would
break): ``CARDKEY_FINGERPRINT_KEY`` if set, else derived from the last-listed encryption key.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from core.log_redaction import register_secret


def _keys() -> list[str]:
    return [part.strip() for part in settings.CARDKEY_ENCRYPTION_KEY.split(",") if part.strip()]


@lru_cache(maxsize=4)
def _multifernet(raw: str) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in _keys()])


@lru_cache(maxsize=4)
def _fingerprint_key(raw: str, explicit: str) -> bytes:
    material = explicit or _keys()[-1]
    return hashlib.sha256(b"kami-cardkey-fingerprint:" + material.encode()).digest()


def fernet() -> MultiFernet:
    return _multifernet(settings.CARDKEY_ENCRYPTION_KEY)


def encrypt_secret(secret: str) -> bytes:
    return fernet().encrypt(secret.encode())


def decrypt_secret(token: bytes | memoryview) -> str:
    """The plaintext key; registered as a secret of the current request or task, so nothing
    it logs (SQL, the console email, an exception) can carry it (``core.log_redaction``)."""
    plaintext = fernet().decrypt(bytes(token)).decode()
    register_secret(plaintext)
    return plaintext


def rotate_token(token: bytes | memoryview) -> bytes:
    return fernet().rotate(bytes(token))


@lru_cache(maxsize=4)
def _primary(raw: str) -> Fernet:
    return Fernet(_keys()[0].encode())


def is_current(token: bytes | memoryview) -> bool:
    """Whether ``token`` is encrypted under the first (encrypting) key: rotation skips it."""
    try:
        _primary(settings.CARDKEY_ENCRYPTION_KEY).decrypt(bytes(token))
    except InvalidToken:
        return False
    return True


def fingerprint(secret: str) -> str:
    """Keyed fingerprint, so equal keys collide without the database learning the key."""
    key = _fingerprint_key(settings.CARDKEY_ENCRYPTION_KEY, settings.CARDKEY_FINGERPRINT_KEY)
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
