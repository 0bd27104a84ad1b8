"""The one rate limiter: fixed windows counted atomically in the Django cache (Redis in
production), used by checkout, order lookups and API token logins.

**Counting.** A window is aligned to the clock (``start = now // window * window``) and its
counter lives under a key naming the window, so a window never needs resetting: the next one
is a different key, and the old one expires a few seconds after it ends. ``hit`` is one
atomic increment (``incr``, and ``add`` to create the counter when it is the window's first
hit): concurrent requests on any number of processes each get a distinct count, and exactly
``limit`` of them are allowed. There is no read-then-write anywhere, so there is no race to
lose. At a window's edge a client can get up to twice the limit in quick succession; for a
brake on scripts that is fine, and it costs one counter per client and window.

**Counting failures.** Limits on failures (wrong lookups, wrong passwords) must not check the
counter and count only after the slow part: then a hundred concurrent guesses are all checked
against a count still at zero, and all are evaluated. Instead, every attempt takes a slot
first (``hit``), the credentials are evaluated only if it was allowed, and a success gives its
slot back (``refund``). So at most ``limit`` credential checks per window are ever failures or
in flight, however many arrive at once; a right answer from a client under the limit still
succeeds and costs it nothing, and once ``limit`` attempts have failed every attempt is refused
(with ``retry_after``) until the window passes.

**When the cache is unreachable** (Redis down or silent), the limiter counts in this process
instead, and logs a warning for every such hit. One policy for all three limits, because
neither alternative is acceptable for any of them:

- *Failing closed* would turn a cache outage into a shop outage: no checkouts, no lookups, no
  promoter logins, while PostgreSQL, which holds everything that matters, is fine.
- *Failing open* would remove the brake exactly where it guards secrets: order lookups guard
  card keys, token logins guard account passwords, and an outage (or an attacker who can
  cause one) would allow unlimited guessing. Checkout's limit against stock hoarding would go
  too.

Counting per process keeps every limit in force, only looser: with N web processes a client
gets at most N x ``limit`` per window instead of ``limit``, and no honest buyer is refused
because Redis is away. Each hit still asks Redis first, so the limits are shared again the
moment it is back; a Redis that refuses connections costs nothing, a silent one costs the
cache's socket timeout (``REDIS_SOCKET_TIMEOUTS``, 0.5 s) per hit. The per-process counters
are forgotten on restart, which only ever loosens a limit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger(__name__)

# Keep a counter this long after its window ends: a hit that computed its window just before
# the end still finds the counter, and a refund still finds the hit it refunds.
EXPIRY_GRACE_SECONDS = 5

# Where hits are counted while the shared cache is unreachable (see the module docstring).
_local = LocMemCache("kami-ratelimit-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


@dataclass(frozen=True)
class Decision:
    """The outcome of one ``hit`` (or, for ``check``, of a hit made now)."""

    allowed: bool
    count: int  # hits counted in this window, this one included (for ``check``: so far)
    limit: int
    retry_after: int  # seconds until the window ends (at least 1)
    cache_key: str  # the window's counter, for ``refund``
    local: bool = False  # counted in this process because the shared cache was unreachable


class RateLimit:
    """At most ``limit`` hits per key in each fixed window of ``window_seconds``.

    ``name`` keeps the limits apart in the cache (``ratelimit:<name>:…``); ``cache`` is for
    tests, which point a limit at a cache of their own; by default the ``default`` cache is
    looked up at each call (it is per thread).
    """

    def __init__(
        self, name: str, *, limit: int, window_seconds: int, cache: BaseCache | None = None
    ) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("a rate limit needs a limit and a window of at least 1")
        self.name = name
        self.limit = limit
        self.window_seconds = window_seconds
        self._cache = cache

    def __repr__(self) -> str:
        return f"RateLimit({self.name!r}, limit={self.limit}, window_seconds={self.window_seconds})"

    @property
    def cache(self) -> BaseCache:
        return self._cache if self._cache is not None else caches["default"]

    def _window(self, key: str, now: float | None) -> tuple[str, int, int]:
        """The counter's cache key, its time to live and the seconds left in the window."""
        now = time.time() if now is None else now
        start = int(now // self.window_seconds) * self.window_seconds
        left = max(1, math.ceil(start + self.window_seconds - now))
        cache_key = f"ratelimit:{self.name}:{self.window_seconds}:{start}:{key or 'unknown'}"
        return cache_key, left + EXPIRY_GRACE_SECONDS, left

    def _decision(self, count: int, cache_key: str, left: int, *, local: bool) -> Decision:
        return Decision(
            allowed=count <= self.limit,
            count=count,
            limit=self.limit,
            retry_after=left,
            cache_key=cache_key,
            local=local,
        )

    def hit(self, key: str, *, now: float | None = None) -> Decision:
        """Count one attempt for ``key`` (atomically) and say whether it is within the limit."""
        cache_key, ttl, left = self._window(key, now)
        try:
            count = _increment(self.cache, cache_key, ttl)
        except Exception as exc:
            logger.warning(
                "rate limit %s: the cache is unreachable (%s); counting in this process",
                self.name,
                exc,
            )
            return self._decision(_increment(_local, cache_key, ttl), cache_key, left, local=True)
        return self._decision(count, cache_key, left, local=False)

    def check(self, key: str, *, now: float | None = None) -> Decision:
        """Whether a hit for ``key`` now would be allowed, without counting one."""
        cache_key, _, left = self._window(key, now)
        local = False
        try:
            count = self.cache.get(cache_key) or 0
        except Exception as exc:
            logger.warning("rate limit %s: the cache is unreachable (%s)", self.name, exc)
            count, local = _local.get(cache_key) or 0, True
        return Decision(
            allowed=count < self.limit,
            count=count,
            limit=self.limit,
            retry_after=left,
            cache_key=cache_key,
            local=local,
        )

    def retry_after(self, key: str, *, now: float | None = None) -> int:
        """Seconds until ``key`` may hit again: 0 while it is under the limit."""
        decision = self.check(key, now=now)
        return 0 if decision.allowed else decision.retry_after

    def refund(self, decision: Decision) -> None:
        """Give back the slot ``decision`` took (a success, on a limit that counts failures).

        Refunds the window the hit was counted in, in the cache it was counted in; a window
        that has expired meanwhile, or an unreachable cache, has nothing to give back to.
        """
        cache = _local if decision.local else self.cache
        try:
            cache.decr(decision.cache_key)
        except ValueError:  # the window expired: nothing to refund
            pass
        except Exception as exc:
            logger.warning("rate limit %s: refund skipped (%s)", self.name, exc)


def _increment(cache: BaseCache, cache_key: str, ttl: int) -> int:
    """One atomic increment of the counter, creating it (atomically, ``add``) if it is new."""
    for _ in range(3):
        try:
            return cache.incr(cache_key)
        except ValueError:  # no counter yet: this may be the window's first hit
            if cache.add(cache_key, 1, ttl):
                return 1
            # Someone else created it between our incr and add: increment theirs.
    raise RuntimeError(f"rate limit counter {cache_key} keeps vanishing")  # pragma: no cover
