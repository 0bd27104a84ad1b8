"""API Bearer tokens (contract §4: ``POST /api/v1/auth/token``), and what ends them.

- Only a token's SHA-256 is stored, so a database reader cannot use one; the token itself is
  shown once, in the answer to the login that made it.
- A token expires ``API_TOKEN_TTL_DAYS`` after it was made (30 by default).
- Each login makes a new token: an earlier one cannot be handed out again, since it is not
  stored. So that a script logging in on every run does not pile up live credentials, a user
  holds at most ``API_TOKENS_PER_USER``; making one more revokes the oldest. Mints of one user
  are serialised on the user's row, so concurrent logins cannot overshoot the cap.
- A password change deletes every token of that user (``RevokeTokensOnPasswordChange``, run by
  Django whenever a password is set and saved: the admin, ``changepassword``, the promoter
  pages; not when a hash is merely upgraded). An inactive user's tokens authenticate nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions.locks import lock_token_holder
from commissions.models import ApiToken
from core.log_redaction import register_secret

# Recording every use would be a write per API call; a minute is precise enough to tell
# whether a token is still in use.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_hash(token: str) -> str:
    register_secret(token)  # a Bearer token being checked: kept out of this request's logs
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user: Any) -> str:
    """A new Bearer token for ``user``, returned once; the oldest beyond the cap are revoked."""
    token = "kami_" + secrets.token_urlsafe(32)
    register_secret(token)
    now = timezone.now()
    with transaction.atomic():
        lock_token_holder(user.pk)
        tokens = ApiToken.objects.filter(user_id=user.pk)
        tokens.filter(expires_at__lte=now).delete()
        ApiToken.objects.create(
            user_id=user.pk,
            key_hash=token_hash(token),
            prefix=token[:12],
            expires_at=now + timedelta(days=settings.API_TOKEN_TTL_DAYS),
        )
        keep = list(
            tokens.order_by("-created_at", "-pk").values_list("pk", flat=True)[
                : settings.API_TOKENS_PER_USER
            ]
        )
        tokens.exclude(pk__in=keep).delete()
    return token


def api_token_user(token: str) -> Any | None:
    """The active user a live token belongs to, or ``None``."""
    now = timezone.now()
    row = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(token or ""), expires_at__gt=now)
        .first()
    )
    if row is None or not row.user.is_active:
        return None
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


def api_tokens_revoke(*, user_id: int) -> int:
    deleted, _ = ApiToken.objects.filter(user_id=user_id).delete()
    return deleted


class RevokeTokensOnPasswordChange:
    """Not a rule for passwords: Django's hook for "this user's password was just changed"
    (``password_validation.password_changed``, called by ``AbstractBaseUser.save`` after
    ``set_password``), listed in ``AUTH_PASSWORD_VALIDATORS`` to reach every way a password
    is changed. It accepts every password."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            api_tokens_revoke(user_id=user.pk)

    def get_help_text(self) -> str:
        return "Changing the password also revokes every API token of the account."
