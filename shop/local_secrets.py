"""Stable development secrets kept under ``var/``.

Development must work with zero configuration, yet a secret that changes on every start would
log everyone out and make every stored card key unreadable. So each secret is generated once,
written with mode 0600, and read back afterwards. Production never reaches this module: with
``DEBUG`` off the settings demand real values.
"""

from __future__ import annotations

import base64
import os
import secrets
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
    value = _generate(kind)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
