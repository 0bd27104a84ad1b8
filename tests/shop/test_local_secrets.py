"""Development secrets under ``var/`` (``shop/local_secrets.py``): created once, kept, private."""

from __future__ import annotations

import stat
import threading

from shop.local_secrets import local_secret


def test_a_secret_is_created_once_with_mode_0600_and_read_back(tmp_path):
    first = local_secret(tmp_path, "secret_key", "django")
    assert first and local_secret(tmp_path, "secret_key", "django") == first
    path = tmp_path / "secret_key.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key.secret"]  # no temporary left


def test_racing_first_uses_all_get_the_same_complete_secret(tmp_path):
    barrier = threading.Barrier(16)
    values: list[str] = []

    def first_use() -> None:
        barrier.wait()
        values.append(local_secret(tmp_path, "cardkey_encryption_key", "fernet"))

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(values) == 16 and len(set(values)) == 1 and len(values[0]) == 44
