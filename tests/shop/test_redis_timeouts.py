"""A Redis that accepts connections but never answers must not hang the shop."""

from __future__ import annotations

import socket
import threading

from django.conf import settings
from django.core.cache.backends.redis import RedisCache


def test_a_silent_redis_fails_cache_calls_instead_of_hanging():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never replies
    port = listener.getsockname()[1]
    cache = RedisCache(
        f"redis://127.0.0.1:{port}/0", {"OPTIONS": dict(settings.REDIS_SOCKET_TIMEOUTS)}
    )
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(cache.add("k", 1, 10))
        except Exception as exc:  # the point: an error comes back
            outcome.append(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(15)
    listener.close()
    assert not thread.is_alive(), "the cache call hung on a silent Redis"
    assert outcome and isinstance(outcome[0], Exception)


def test_the_configured_cache_uses_those_timeouts():
    if not settings.REDIS_URL:
        return
    options = settings.CACHES["default"]["OPTIONS"]
    assert options["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUTS["socket_timeout"]
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
