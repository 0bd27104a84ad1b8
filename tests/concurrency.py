"""Real threads released together, each on its own database connection.

Every race test in the suite uses this one helper, on PostgreSQL and on SQLite alike, so a
thread that never finishes fails the test instead of hiding behind a join timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_concurrently(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread is still running"
    return results
