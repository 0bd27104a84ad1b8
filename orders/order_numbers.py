"""Order numbers: a date prefix for humans, 80 random bits so nobody can guess a neighbour's."""

from __future__ import annotations

import base64
import secrets

from django.utils import timezone


def new_order_no() -> str:
    random_part = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=")
    return f"K{timezone.now():%y%m%d}{random_part}"
