"""Reads of the key pool. Decrypted secrets leave here only for the order's buyer or owner."""

from __future__ import annotations

from cardpool.crypto import decrypt_secret
from cardpool.models import CardKey


def keys_for_order(order) -> list[str]:
    """The plaintext keys delivered to ``order``, in slot order. Callers check access first."""
    rows = CardKey.objects.filter(order=order, status=CardKey.Status.SOLD).order_by("slot")
    return [decrypt_secret(secret) for secret in rows.values_list("secret", flat=True)]
