"""The architecture as a test: the allowed arrows between apps (``pyproject.toml``'s
import-linter contracts) hold, so a new circle fails the suite, not only ``make lint``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
APPS = ("shop", "orders", "cardpool", "commissions", "riskrules", "analytics", "core")
# The modules that wire every app together (the contracts' top layer): the only ones that may
# import analytics.
PROJECT = (
    "shop.urls",
    "shop.api",
    "shop.asgi",
    "shop.wsgi",
    "shop.server",
    "shop.routing",
    "shop.access_log",
    "shop.celery",
    "shop.processes",
    "shop.settings",
    "shop.settings_test",
    "shop.management",
)


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_no_app_module_imports_analytics():
    graph = grimp.build_graph(*APPS, cache_dir=None)
    importers = graph.find_downstream_modules("analytics", as_package=True)  # its importers
    assert sorted(m for m in importers if not _in(m, PROJECT)) == []


def test_every_shop_module_sits_in_a_layer():
    """``shop`` is both the project package and the catalog, so the layers contract names its
    modules one by one; a new module that no layer names would escape every contract."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = next(
        c["layers"]
        for c in config["tool"]["importlinter"]["contracts"]
        if c.get("type") == "layers"
    )
    named = {m.strip() for layer in layers for part in layer.split("|") for m in part.split(":")}
    graph = grimp.build_graph("shop", cache_dir=None)
    top_level = {".".join(m.split(".")[:2]) for m in graph.modules if m.count(".") >= 1}
    assert sorted(m for m in top_level if m not in named) == []
