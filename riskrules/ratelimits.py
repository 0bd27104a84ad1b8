"""The checkout rate limit per client IP, counted in the Django cache (Redis when configured).

A fixed window per IP: the first attempt creates the counter with ``add`` (atomic), later ones
``incr`` it (atomic in Redis), so concurrent workers share one exact count without a lock. At
a window's edge a client can get up to twice the limit in quick succession; for a brake on
scripts that is fine, and it keeps the cost to one round trip per checkout.

If the cache is down the limit fails open (logged): refusing every buyer because Redis is away
would be a worse outage than an unthrottled minute. Risk rules still run in the database.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from riskrules.models import RiskSettings
from shop.errors import RateLimited

logger = logging.getLogger(__name__)


def _describe(seconds: int) -> str:
    if seconds == 60:
        return "minute"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def checkout_throttle(*, client_ip: str | None, now: float | None = None) -> None:
    """Count one checkout attempt from ``client_ip``; raise ``RateLimited`` over the limit."""
    settings = RiskSettings.current()
    limit, window = settings.checkout_rate_limit, max(1, settings.checkout_rate_window_seconds)
    if not limit:
        return
    now = time.time() if now is None else now
    start = int(now // window) * window
    key = f"checkout-rate:{client_ip or 'unknown'}:{window}:{start}"
    try:
        if cache.add(key, 1, window + 5):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr: a fresh window
                cache.add(key, 1, window + 5)
                count = 1
    except Exception:
        logger.warning("checkout rate limit skipped: the cache is unavailable", exc_info=True)
        return
    if count > limit:
        retry_after = max(1, int(start + window - now + 0.999))
        raise RateLimited(
            f"Too many checkouts from your network: at most {limit} per {_describe(window)}. "
            f"Try again in {retry_after} seconds.",
            retry_after=retry_after,
        )
