"""The ASGI application ``serve`` (and any ASGI server) runs, and how ``serve`` runs it.

HTTP goes to Django's *WSGI* handler on a fixed pool of ``WEB_THREADS`` threads (a2wsgi's
``WSGIMiddleware``), not to Django's ``ASGIHandler``. The ASGI handler runs every request's
sync view in a brand-new thread (asgiref's ``ThreadSensitiveContext`` gives each request its
own single-thread executor), and Django's connections are per thread: each request would open
a database connection, and with ``CONN_MAX_AGE`` > 0 leave it open, so 200 concurrent buyers
meant 200 PostgreSQL connections. On a fixed pool each thread keeps one persistent connection
(``CONN_MAX_AGE`` works as designed), so a process holds at most ``WEB_THREADS`` of them, and
requests beyond that wait their turn in the pool's queue instead of in the database.

The top level routes by ASGI scope type with the same contract as Channels'
``ProtocolTypeRouter``; ``"websocket"`` goes to Channels (``shop.routing``, contract §7) behind
``AllowedHostsOriginValidator``, so a page on another site cannot open a buyer's socket with the
buyer's cookies. Sockets are async and hold no thread; the few queries they make (at the
handshake) run on Channels' one database thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_WEB_THREADS = 8

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def web_threads() -> int:
    """``WEB_THREADS`` from the environment: request threads, hence DB connections, per process."""
    raw = os.environ.get("WEB_THREADS", "").strip()
    if not raw:
        return DEFAULT_WEB_THREADS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"WEB_THREADS must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"WEB_THREADS must be at least 1, not {value}")
    return value


class ProtocolRouter:
    """Dispatch on ``scope["type"]``, like ``channels.routing.ProtocolTypeRouter`` (same
    constructor, same error for an unknown type), which can replace it once Channels is in."""

    def __init__(self, application_mapping: Mapping[str, ASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            application = self.application_mapping[scope["type"]]
        except KeyError:
            raise ValueError(
                f"No application configured for scope type {scope['type']!r}"
            ) from None
        await application(scope, receive, send)


class Lifespan:
    """The ``lifespan`` protocol: at start-up hand the server's event loop to the live-update
    publisher (``orders.live.bind_loop``: without Redis the in-memory channel layer lives on
    it); at shutdown run ``on_shutdown`` (blocking, so in a thread) once uvicorn has drained
    the open connections."""

    def __init__(self, on_shutdown: Callable[[], None] | None = None) -> None:
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from orders.live import bind_loop

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                bind_loop(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                bind_loop(None)
                try:
                    if self.on_shutdown is not None:
                        await asyncio.to_thread(self.on_shutdown)
                except Exception as exc:
                    logger.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def websocket_application() -> ASGIApp:
    """The ``"websocket"`` route: Channels' URL router for ``shop.routing``, behind the origin
    check (a socket opened by a page of another site is refused like a stranger).

    Channels' own validator also refuses a handshake that names no origin unless
    ``ALLOWED_HOSTS`` is ``*``. A browser always names the page's origin, and only a browser
    carries a visitor's cookies to another site's socket, so a handshake without one is a script
    (contract §7's ``?email=`` / ``?query_password=`` form is for them): it is judged by the
    consumer's access rule like any lookup, not refused for a header it has no reason to send."""
    from channels.routing import URLRouter
    from channels.security.websocket import OriginValidator
    from django.conf import settings

    from shop.routing import websocket_urlpatterns

    class BrowserOriginValidator(OriginValidator):
        def valid_origin(self, parsed_origin: Any) -> bool:
            return parsed_origin is None or bool(super().valid_origin(parsed_origin))

    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(URLRouter(websocket_urlpatterns), allowed)


def build_application(threads: int | None = None) -> ProtocolRouter:
    """Kami's ASGI application: HTTP through Django's WSGI handler on ``threads`` threads,
    WebSockets through Channels.

    Call it after ``DJANGO_SETTINGS_MODULE`` is set; it runs ``django.setup()``.
    """
    from a2wsgi import WSGIMiddleware
    from django.core.wsgi import get_wsgi_application

    threads = threads or web_threads()
    http = WSGIMiddleware(get_wsgi_application(), workers=threads)

    websocket = websocket_application()

    def shutdown() -> None:
        # Queued requests were already answered or abandoned by the server's graceful
        # shutdown; let the running ones finish, and the threads (with their connections) go.
        http.executor.shutdown(wait=True, cancel_futures=True)

    return ProtocolRouter(
        {"http": http, "websocket": websocket, "lifespan": Lifespan(on_shutdown=shutdown)}
    )


def uvicorn_server(application: ASGIApp, *, host: str, port: int):
    """A uvicorn ``Server`` for ``application``, tuned for a burst of buyers.

    - ``backlog`` 2048 (uvicorn's default; the kernel caps it at ``net.core.somaxconn``):
      a burst of connections waits in the accept queue instead of being reset.
    - no ``limit_concurrency``: connections above the thread count are accepted and their
      requests queue for a thread, rather than being answered 503.
    - ``timeout_graceful_shutdown``: Ctrl-C waits at most this long for requests in flight.
    - the access log redacts ``email``/``query_password`` (and ``password``, ``token``) in
      query strings (``shop.access_log``): lookups may carry them in the URL.
    """
    import uvicorn

    from shop.access_log import install_uvicorn_redaction

    install_uvicorn_redaction()

    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        lifespan="on",
        backlog=2048,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        access_log=os.environ.get("WEB_ACCESS_LOG", "1") not in ("0", "false", "no"),
        server_header=False,
        proxy_headers=False,  # Kami reads X-Forwarded-For itself (TRUST_X_FORWARDED_FOR)
        log_config=None,  # keep Django's LOGGING; uvicorn's loggers propagate to its root
    )
    return uvicorn.Server(config)


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` now, before anything else starts, and hand the socket to uvicorn
    (``server.run(sockets=[...])``): a port already in use fails here, with nothing (no task
    worker) left behind, instead of inside uvicorn after the worker was started.

    Raises ``OSError`` (``EADDRINUSE``, ``EACCES`` …) as ``socket.bind`` does.
    """
    bare = host.removeprefix("[").removesuffix("]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds its own
        sock.bind((bare, port))
    except OSError:
        sock.close()
        raise
    return sock
