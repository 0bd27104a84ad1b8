"""Stable development secrets kept under ``var/``.

Development must work with zero configuration, yet a secret that changes on every start would
log everyone out and make every stored card key unreadable. So each secret is generated once,
written with mode 0600, and read back afterwards. With ``DEBUG`` off the settings take
``SECRET_KEY`` and ``CARDKEY_ENCRYPTION_KEY`` only from the environment (start-up stops
without them); what may still come from here then is the webhook secret the sandbox signs its
events with, when the owner switched the sandbox on without Stripe (``SANDBOX_PAYMENTS``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def _generate(kind: str) -> str:
    if kind == "fernet":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if kind == "whsec":
        return "whsec_" + secrets.token_urlsafe(32)
    return secrets.token_urlsafe(50)


def local_secret(var_dir: Path, name: str, kind: str) -> str:
    """Return the secret ``name`` stored in ``var_dir``, creating it on first use."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / f"{name}.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # Written whole under a temporary name (mkstemp: mode 0600), then linked into place, so a
    # process racing this one finds either no file or the complete secret, never a part of it.
    fd, temporary = tempfile.mkstemp(dir=var_dir, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(_generate(kind))
        with contextlib.suppress(FileExistsError):  # another process won the race: use its value
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text().strip()
