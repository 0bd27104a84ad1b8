"""The shop's one authentication backend: the login lockout, then the password, with the seeded
demo logins refused outside development (contract §3); every login's password is registered as
a secret of its request (``core.log_redaction``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from core.lockout import LockoutCheckMixin
from core.log_redaction import register_secret

DEMO_LOGINS = frozenset({"admin", "promoter", "promoter2"})


class NoDemoLoginsInProductionBackend(ModelBackend):
    """``admin``/``admin`` and friends are fine on a laptop and a disaster on a server: with
    ``DEBUG`` off a demo account whose password is still its username cannot log in."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        register_secret(password)  # every login passes here: its password stays out of logs
        if not settings.DEBUG and username in DEMO_LOGINS and password == username:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class KamiAuthBackend(LockoutCheckMixin, NoDemoLoginsInProductionBackend):
    """``AUTHENTICATION_BACKENDS``' only entry: one backend, so every login (and
    ``force_login``) records the same backend in the session."""
