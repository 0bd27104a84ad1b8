"""Reads of the key pool. Decrypted secrets leave here only for the order's buyer or owner."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from cardpool.crypto import decrypt_secret
from cardpool.models import CardKey


def free_keys_filter(now: datetime) -> Q:
    """Keys anyone may take now: available ones and reservations whose hold ran out."""
    return Q(status=CardKey.Status.AVAILABLE) | Q(
        status=CardKey.Status.RESERVED, reserved_until__lte=now
    )


def free_key_count(product_id: int, *, now: datetime) -> int:
    return CardKey.objects.filter(free_keys_filter(now), product_id=product_id).count()


def keys_for_order(order) -> list[str]:
    """The plaintext keys delivered to ``order``, in slot order. Callers check access first."""
    rows = CardKey.objects.filter(order=order, status=CardKey.Status.SOLD).order_by("slot")
    return [decrypt_secret(secret) for secret in rows.values_list("secret", flat=True)]


def sold_key_count(order_id: int) -> int:
    """How many keys ``order`` holds, without decrypting any: what the order page may say."""
    return CardKey.objects.filter(order_id=order_id, status=CardKey.Status.SOLD).count()
