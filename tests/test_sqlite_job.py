"""The SQLite job: the core loop, the import and the races of ``tests/sqlite/`` on SQLite.

``make run`` without ``DATABASE_URL`` gives every new user SQLite, while the rest of the suite
runs on PostgreSQL. So this test starts pytest again in a subprocess on a fresh SQLite file
(WAL, IMMEDIATE transactions, exactly the settings ``make run`` uses), without Redis and with
tasks in-process after commit, and requires every test there to have run and passed: none
failed, none skipped, none missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own pytest's report
from pathlib import Path

from django.conf import settings

SQLITE_TESTS = Path(__file__).parent / "sqlite"


def sqlite_job_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return env | {
        "KAMI_SQLITE_JOB": "1",
        "DJANGO_SETTINGS_MODULE": "shop.settings_test",
        "DATABASE_URL": f"sqlite:///{var_dir / 'kami.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "KAMI_VAR_DIR": str(var_dir),
    }


def test_the_sqlite_job_runs_and_passes_every_test(tmp_path):
    var_dir = tmp_path / "var"
    report = tmp_path / "sqlite-job.xml"
    # No -q: the output names each test, so a failure below shows which one and why.
    process = subprocess.run(
        [sys.executable, "-m", "pytest", str(SQLITE_TESTS), "-p", "no:cacheprovider"]
        + [f"--junitxml={report}"],
        cwd=settings.BASE_DIR,
        env=sqlite_job_env(var_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = process.stdout[-20_000:] + process.stderr[-5_000:]
    assert process.returncode == 0, output

    root = ET.parse(report).getroot()  # noqa: S314 - our own pytest's report
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("failures", "errors", "skipped")}
    assert int(suite.get("tests")) > 0 and counts == dict.fromkeys(counts, 0), output
    modules_run = {case.get("classname").rsplit(".", 1)[-1] for case in suite.iter("testcase")}
    assert modules_run == {path.stem for path in SQLITE_TESTS.glob("test_*.py")}, output
