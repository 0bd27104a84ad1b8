"""core.ratelimit: fixed windows, one atomic count under real threads, refunds, and the one
policy when the cache is unreachable (count in this process, logged)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from core.ratelimit import Decision, RateLimit

T0 = 1_000_020.0  # the start of a 60-second window (1_000_020 = 16_667 x 60)


def own_locmem() -> LocMemCache:
    return LocMemCache(f"ratelimit-test-{uuid.uuid4()}", {})


def own_redis() -> RedisCache:
    """The suite's Redis under a prefix of this test's own: no other test (or engineer's
    suite on the same Redis) can see or clear its counters."""
    return RedisCache(
        settings.REDIS_URL,
        {"KEY_PREFIX": f"ratelimit-test-{uuid.uuid4()}", "OPTIONS": settings.REDIS_SOCKET_TIMEOUTS},
    )


def unreachable_redis() -> RedisCache:
    """A Redis URL on a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": settings.REDIS_SOCKET_TIMEOUTS})


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` in ``n`` real threads released together by a barrier."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results


# --- the window ----------------------------------------------------------------------------


def test_limit_per_key_per_window_with_retry_after():
    limit = RateLimit("t", limit=3, window_seconds=60, cache=own_locmem())
    hits = [limit.hit("1.2.3.4", now=T0 + i) for i in range(4)]
    assert [(d.allowed, d.count) for d in hits] == [(True, 1), (True, 2), (True, 3), (False, 4)]
    assert hits[-1].retry_after == 57 and hits[-1].limit == 3
    assert limit.hit("5.6.7.8", now=T0 + 4).allowed  # another key has its own count
    later = limit.hit("1.2.3.4", now=T0 + 59.5)
    assert not later.allowed and later.retry_after == 1  # never 0: "retry now" would be wrong
    fresh = limit.hit("1.2.3.4", now=T0 + 60)  # the next window starts from zero
    assert fresh.allowed and fresh.count == 1 and fresh.retry_after == 60


def test_windows_are_aligned_to_the_clock():
    limit = RateLimit("t", limit=1, window_seconds=600, cache=own_locmem())
    assert limit.hit("k", now=1_200.0 + 599).retry_after == 1
    assert limit.hit("k", now=1_800.0).allowed  # 1_800 starts a new 600-second window


def test_limits_with_different_names_or_windows_do_not_share_a_count():
    cache = own_locmem()
    a = RateLimit("a", limit=1, window_seconds=60, cache=cache)
    b = RateLimit("b", limit=1, window_seconds=60, cache=cache)
    a_long = RateLimit("a", limit=1, window_seconds=120, cache=cache)
    assert a.hit("k", now=T0).allowed and b.hit("k", now=T0).allowed
    assert a_long.hit("k", now=T0).allowed
    assert not a.hit("k", now=T0).allowed


def test_check_and_retry_after_do_not_count():
    limit = RateLimit("t", limit=2, window_seconds=60, cache=own_locmem())
    assert limit.check("k", now=T0) == Decision(
        allowed=True,
        count=0,
        limit=2,
        retry_after=60,
        cache_key=limit.check("k", now=T0).cache_key,
    )
    assert limit.retry_after("k", now=T0) == 0
    limit.hit("k", now=T0)
    assert limit.check("k", now=T0 + 1).allowed and limit.check("k", now=T0 + 1).count == 1
    limit.hit("k", now=T0 + 1)
    over = limit.check("k", now=T0 + 10)
    assert not over.allowed and over.count == 2
    assert limit.retry_after("k", now=T0 + 10) == 50
    assert limit.hit("k", now=T0 + 10).count == 3  # check and retry_after counted nothing


def test_refund_gives_the_slot_back():
    limit = RateLimit("t", limit=2, window_seconds=60, cache=own_locmem())
    first = limit.hit("k", now=T0)
    limit.refund(first)  # e.g. the credentials were right
    assert limit.hit("k", now=T0).count == 1
    assert limit.hit("k", now=T0).count == 2
    assert not limit.hit("k", now=T0).allowed


def test_refund_after_the_window_expired_is_a_no_op():
    cache = own_locmem()
    limit = RateLimit("t", limit=2, window_seconds=60, cache=cache)
    decision = limit.hit("k", now=T0)
    cache.delete(decision.cache_key)  # what expiry does
    limit.refund(decision)
    assert cache.get(decision.cache_key) is None


def test_a_limit_needs_a_limit_and_a_window():
    with pytest.raises(ValueError):
        RateLimit("t", limit=0, window_seconds=60)
    with pytest.raises(ValueError):
        RateLimit("t", limit=1, window_seconds=0)


def test_the_default_cache_is_used_when_none_is_given():
    from django.core.cache import cache

    limit = RateLimit("default-cache", limit=1, window_seconds=60)
    decision = limit.hit("k")
    assert cache.get(decision.cache_key) == 1


# --- atomic under real threads -------------------------------------------------------------


@pytest.mark.redis
def test_100_threads_against_a_limit_of_30_on_redis_exactly_30_pass():
    limit = RateLimit("race", limit=30, window_seconds=600, cache=own_redis())
    now = time.time()
    decisions = race(100, lambda i: limit.hit("203.0.113.1", now=now))
    assert sum(d.allowed for d in decisions) == 30
    assert sorted(d.count for d in decisions) == list(range(1, 101))  # each count once
    assert not any(d.local for d in decisions)


def test_100_threads_against_a_limit_of_30_in_process_memory_exactly_30_pass():
    limit = RateLimit("race", limit=30, window_seconds=600, cache=own_locmem())
    decisions = race(100, lambda i: limit.hit("203.0.113.1"))
    assert sum(d.allowed for d in decisions) == 30
    assert sorted(d.count for d in decisions) == list(range(1, 101))


@pytest.mark.redis
def test_slot_before_the_slow_check_evaluates_exactly_the_limit():
    """The failure-counting pattern (order lookups, token logins): take a slot, evaluate the
    credentials only if allowed, refund on success. 100 concurrent wrong guesses against a
    limit of 30: exactly 30 are evaluated, however slow the evaluation."""
    limit = RateLimit("guesses", limit=30, window_seconds=600, cache=own_redis())
    evaluated = []
    lock = threading.Lock()

    def guess(i: int) -> str:
        attempt = limit.hit("203.0.113.2")
        if not attempt.allowed:
            return "refused"
        time.sleep(0.02)  # the slow credential check, wrong every time
        with lock:
            evaluated.append(i)
        return "wrong"

    outcomes = race(100, guess)
    assert len(evaluated) == 30
    assert outcomes.count("refused") == 70


@pytest.mark.redis
def test_successes_do_not_use_up_the_limit_under_concurrency():
    limit = RateLimit("guesses", limit=5, window_seconds=600, cache=own_redis())

    def right(i: int) -> bool:
        attempt = limit.hit("203.0.113.3")
        if attempt.allowed:
            limit.refund(attempt)
        return attempt.allowed

    # 5 at a time, 40 in all: each success gives its slot back before the next batch.
    for _ in range(8):
        assert all(race(5, right))
    assert limit.check("203.0.113.3").count == 0


# --- the cache is unreachable: count in this process -----------------------------------------


def test_unreachable_redis_counts_in_this_process_and_logs(caplog):
    limit = RateLimit(f"down-{uuid.uuid4()}", limit=3, window_seconds=60, cache=unreachable_redis())
    started = time.monotonic()
    decisions = [limit.hit("198.51.100.9", now=T0 + i) for i in range(4)]
    assert time.monotonic() - started < 5  # a refused connection fails fast
    assert [d.allowed for d in decisions] == [True, True, True, False]  # still limited
    assert all(d.local for d in decisions)
    assert decisions[-1].retry_after == 57
    assert "the cache is unreachable" in caplog.text and "counting in this process" in caplog.text
    # check and refund work against the same per-process counter.
    assert not limit.check("198.51.100.9", now=T0 + 5).allowed
    limit.refund(decisions[0])
    assert limit.check("198.51.100.9", now=T0 + 5).count == 3


def test_unreachable_redis_never_refuses_a_client_under_the_limit():
    limit = RateLimit(
        f"down-{uuid.uuid4()}", limit=20, window_seconds=60, cache=unreachable_redis()
    )
    assert all(limit.hit(f"198.51.100.{i}").allowed for i in range(20))  # 20 different clients


def test_a_silent_redis_costs_one_socket_timeout_per_hit_then_counts_locally():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts; nobody ever answers
    port = listener.getsockname()[1]
    try:
        silent = RedisCache(
            f"redis://127.0.0.1:{port}/0", {"OPTIONS": settings.REDIS_SOCKET_TIMEOUTS}
        )
        limit = RateLimit(f"silent-{uuid.uuid4()}", limit=1, window_seconds=60, cache=silent)
        started = time.monotonic()
        first, second = limit.hit("k", now=T0), limit.hit("k", now=T0 + 1)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert first.allowed and first.local
    assert not second.allowed and second.local
    assert elapsed < 2 * (settings.REDIS_SOCKET_TIMEOUTS["socket_timeout"] + 1)
