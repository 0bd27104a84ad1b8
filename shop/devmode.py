"""Development or production: which one a checkout is, and where ``make run`` may serve it.

Settings default to production (``DEBUG`` off). A checkout is a development shop only when
told so: ``DEBUG=1`` in the environment, or the marker file ``var/DEVELOPMENT`` that
``make run`` writes before anything else, so that ``manage.py seed_demo`` or ``import_keys``
run later in the same checkout are development too. A fresh environment elsewhere (a server,
the Docker image: ``.dockerignore`` leaves ``var/`` out) has no marker and is production.

A development shop hands out keys for free (the sandbox Pay page), lets ``admin``/``admin``
in and shows tracebacks. So ``make run`` and ``manage.py serve`` serve it on a loopback address
only; on any other address they refuse unless told twice, ``DEBUG=1`` *and*
``KAMI_EXPOSE_DEV_SHOP=yes-anyone-can-take-free-keys``: one variable is easy to leave set by
accident, both together are a decision.

This module imports nothing from Django or Kami: the settings read it before Django is
configured, and ``make run`` runs it first (``python -m shop.devmode``).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

MARKER_NAME = "DEVELOPMENT"
EXPOSE_VARIABLE = "KAMI_EXPOSE_DEV_SHOP"
EXPOSE_CONSENT = "yes-anyone-can-take-free-keys"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - recognised here in order to refuse it

_MARKER_TEXT = """\
This checkout is a development shop: `make run` wrote this file, and while it exists Kami's
settings default to DEBUG on (sandbox payments, demo logins, tracebacks) for every command run
here. Delete it, or set DEBUG=0, and the defaults are production's again.
"""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def var_dir(base_dir: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Where local state lives: ``KAMI_VAR_DIR``, else ``var/`` in the checkout."""
    return Path(environ.get("KAMI_VAR_DIR") or base_dir / "var")


def is_development_checkout(var: Path) -> bool:
    return (var / MARKER_NAME).is_file()


def mark_development(var: Path) -> bool:
    """Write the marker; ``True`` if it was not there before."""
    path = var / MARKER_NAME
    if path.is_file():
        return False
    var.mkdir(parents=True, exist_ok=True)
    path.write_text(_MARKER_TEXT)
    return True


def _bare(host: str) -> str:
    return host.strip().removeprefix("[").removesuffix("]")


def is_loopback(host: str) -> bool:
    bare = _bare(host)
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(host: str) -> list[str]:
    """The loopback names, plus ``host`` when it names one address (not ``0.0.0.0``/``::``,
    which say where to listen, not what buyers type). Never ``*``."""
    hosts = list(LOOPBACK_HOSTS)
    bare = _bare(host)
    if bare not in _WILDCARD_ADDRESSES and not is_loopback(host):
        hosts.append(f"[{bare}]" if ":" in bare else bare)
    return hosts


def explicitly_debug(environ: Mapping[str, str]) -> bool | None:
    """``DEBUG`` as the environment states it, ``None`` when unset (or not a boolean)."""
    value = environ.get("DEBUG", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def exposure_refusal(host: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the development shop must not be served on ``host``, or ``None`` if it may."""
    if is_loopback(host):
        return None
    if explicitly_debug(environ) and environ.get(EXPOSE_VARIABLE) == EXPOSE_CONSENT:
        return None
    return (
        f"Refusing to serve the development shop on HOST={host or '(empty)'}: anyone who can "
        "reach it could log in as admin/admin, take keys for free from the sandbox payment "
        "page and read tracebacks.\n"
        "  - To try Kami on this machine, leave HOST unset (127.0.0.1).\n"
        "  - To show the development shop on a network you trust, say so twice:\n"
        f"      DEBUG=1 {EXPOSE_VARIABLE}={EXPOSE_CONSENT} HOST={host or '0.0.0.0'} make run\n"  # noqa: S104
        "    and set ALLOWED_HOSTS to the address people will type.\n"
        "  - To run a real shop, see docs/deployment.md (DEBUG=0, Stripe, your own owner login)."
    )


def exposure_warning(host: str) -> str | None:
    """The banner ``serve`` prints when it serves the development shop off loopback."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: the DEVELOPMENT shop is reachable on {host}: demo logins (admin/admin) and "
        "free sandbox payments work for anyone who can reach this address "
        f"({EXPOSE_VARIABLE} is set)."
    )


def main(environ: Mapping[str, str] = os.environ) -> int:
    """``make run``'s first step: refuse what must not be served, then mark the checkout."""
    base_dir = Path(__file__).resolve().parent.parent
    if explicitly_debug(environ) is False:
        print(
            "make run serves the development shop, but DEBUG is off (production). For a real "
            "shop see docs/deployment.md; for development unset DEBUG.",
            file=sys.stderr,
        )
        return 2
    refusal = exposure_refusal(environ.get("HOST", "127.0.0.1"), environ)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    var = var_dir(base_dir, environ)
    if mark_development(var):
        print(
            f"Marked this checkout as development ({var / MARKER_NAME}): manage.py commands "
            "run here default to DEBUG on. Delete the file to undo."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
