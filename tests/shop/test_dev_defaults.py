"""Production-safe defaults (issue "Owner security and hardening", finding "Unsafe development
defaults"): settings are production's unless told otherwise; ``make run`` turns development on
explicitly, keeps working with zero configuration, and will not serve the development shop
(free sandbox keys, ``admin``/``admin``, tracebacks) on a network address unless told twice.

Everything runs in subprocesses with an environment built from nothing and a fresh
``KAMI_VAR_DIR``, as on a fresh clone or a fresh server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shop import devmode
from tests.serving import free_port, http_get

ROOT = Path(__file__).resolve().parents[2]
CONSENT = {"DEBUG": "1", devmode.EXPOSE_VARIABLE: devmode.EXPOSE_CONSENT}

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({"DEBUG": settings.DEBUG, "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
                  "SANDBOX": settings.SANDBOX_PAYMENTS_ENABLED}))
"""


@pytest.fixture
def bare_env(tmp_path) -> dict[str, str]:
    """No DEBUG, no secrets, no database or Redis: a fresh machine (or server)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KAMI_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "PYTHONUNBUFFERED": "1",
    }


def _settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _shown(env: dict[str, str]) -> dict:
    result = _settings(env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_default_to_production(bare_env):
    refused = _settings(bare_env)
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr and "make run" in refused.stderr
    secrets = {"SECRET_KEY": "s" * 50, "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    shown = _shown(bare_env | secrets)
    assert shown == {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["localhost", "127.0.0.1", "[::1]"],
        "SANDBOX": False,
    }


def test_allowed_hosts_is_never_a_wildcard_by_default(bare_env):
    for host, expected in (
        ("0.0.0.0", ["localhost", "127.0.0.1", "[::1]"]),  # noqa: S104
        ("192.168.1.20", ["localhost", "127.0.0.1", "[::1]", "192.168.1.20"]),
        ("::", ["localhost", "127.0.0.1", "[::1]"]),
    ):
        shown = _shown(bare_env | {"DEBUG": "1", "HOST": host})
        assert shown["ALLOWED_HOSTS"] == expected, host
        assert "*" not in shown["ALLOWED_HOSTS"]


def test_the_development_marker_makes_a_checkout_development(bare_env, tmp_path):
    assert devmode.mark_development(tmp_path / "var")
    assert not devmode.mark_development(tmp_path / "var")  # written once
    shown = _shown(bare_env)  # no secrets needed: development keeps them under var/
    assert shown["DEBUG"] is True and shown["SANDBOX"] is True
    assert "*" not in shown["ALLOWED_HOSTS"]
    secrets = {"SECRET_KEY": "s" * 50, "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    assert _shown(bare_env | secrets | {"DEBUG": "0"})["DEBUG"] is False  # DEBUG=0 still wins


@pytest.mark.parametrize(
    ("host", "environ", "refused"),
    [
        ("127.0.0.1", {}, False),
        ("localhost", {}, False),
        ("::1", {}, False),
        ("[::1]", {}, False),
        ("127.0.0.2", {}, False),
        ("0.0.0.0", {}, True),  # noqa: S104
        ("0.0.0.0", {"DEBUG": "1"}, True),  # noqa: S104 - told once
        ("0.0.0.0", {devmode.EXPOSE_VARIABLE: devmode.EXPOSE_CONSENT}, True),  # noqa: S104
        ("0.0.0.0", {"DEBUG": "1", devmode.EXPOSE_VARIABLE: "yes"}, True),  # noqa: S104
        ("0.0.0.0", CONSENT, False),  # noqa: S104 - told twice
        ("192.168.1.20", {}, True),
        ("shop.local", {}, True),
        ("", {}, True),
    ],
)
def test_exposure_needs_both_debug_and_the_consent(host, environ, refused):
    assert (devmode.exposure_refusal(host, environ) is not None) is refused


# -o: the venv counts as installed (the suite runs inside it); the recipe is make run's own.
MAKE_RUN = ["make", "--no-print-directory", "-o", ".venv/.installed", "run"]


def test_make_run_refuses_a_network_address_unless_told_twice(bare_env, tmp_path):
    refused = subprocess.run(
        MAKE_RUN,
        cwd=ROOT,
        env=bare_env | {"HOST": "0.0.0.0", "DEBUG": "1"},  # noqa: S104
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "Refusing to serve the development shop on HOST=0.0.0.0" in refused.stderr
    assert f"{devmode.EXPOSE_VARIABLE}={devmode.EXPOSE_CONSENT}" in refused.stderr
    assert not (tmp_path / "var" / devmode.MARKER_NAME).exists()  # stopped before anything

    told_twice = subprocess.run(
        [sys.executable, "-m", "shop.devmode"],
        cwd=ROOT,
        env=bare_env | {"HOST": "0.0.0.0"} | CONSENT,  # noqa: S104
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert told_twice.returncode == 0, told_twice.stderr
    assert (tmp_path / "var" / devmode.MARKER_NAME).exists()


def test_make_run_refuses_debug_off(bare_env):
    result = subprocess.run(
        MAKE_RUN,
        cwd=ROOT,
        env=bare_env | {"DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DEBUG is off" in result.stderr


def test_serve_refuses_the_development_shop_on_a_network_address(bare_env, tmp_path):
    devmode.mark_development(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=bare_env | {"HOST": "0.0.0.0", "PORT": str(free_port())},  # noqa: S104
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Refusing to serve the development shop" in result.stderr
    assert "Kami at" not in result.stdout


def test_make_run_on_a_fresh_checkout_then_commands_in_it(bare_env, tmp_path):
    """Contract §1–3: zero configuration, demo logins printed, then seed_demo and import_keys
    work in the same checkout (the marker), while a fresh environment elsewhere is production."""
    port = free_port()
    log = tmp_path / "make-run.log"
    env = bare_env | {"PORT": str(port)}
    with open(log, "w") as out:
        make = subprocess.Popen(
            MAKE_RUN,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make, serve and all they start
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert make.poll() is None, log.read_text()
            try:
                if http_get(port, "/api/v1/products") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        output = log.read_text()
        assert "Demo logins: admin/admin (owner), promoter/promoter, promoter2/promoter2" in output
        assert (tmp_path / "var" / devmode.MARKER_NAME).exists()
        assert (tmp_path / "var" / "kami.sqlite3").exists()
        assert http_get(port, "/p/steam-wallet-10") == 200

        seeded = subprocess.run(
            [sys.executable, "manage.py", "seed_demo"],
            cwd=ROOT,
            env=bare_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        imported = subprocess.run(
            [sys.executable, "manage.py", "import_keys", "steam-wallet-10", "-"],
            cwd=ROOT,
            env=bare_env,
            input="MAKE-RUN-NEW-KEY-1\n\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert imported.returncode == 0, imported.stderr
        assert "imported 1, duplicates 0, skipped" in imported.stdout
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)  # Ctrl-C, as a person stops make run
            try:
                make.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
