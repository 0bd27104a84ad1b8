"""Live updates: an order's status changes pushed to its page and to the owner's feed.

Contract §7. Each committed status change is published once, after its transaction commits,
to two channel-layer groups: the order's own (``order.<ORDER_NO>``, the order page's socket)
and the owner's feed (``orders.feed``, staff only). ``orders.consumers`` holds the sockets.

**Never on the order's path.** The hook (``status_changed``) is one ``transaction.on_commit``
per transition path (a payment that delivers at once is one message, not two), built from
what the transition already holds in memory: no query in the delivery transaction, none
after it. The callback only hands the messages to an event loop (``_submit``) and returns;
the send itself happens there, so a slow or dead Redis never delays, fails or rolls back an
order. A send that fails is logged and dropped: the page reads the status again when its
socket (re)connects and falls back to polling, and the feed is a view, not a record.

**Which event loop.** The channel layer belongs to an event loop (the in-memory layer's
queues, the Redis layer's connections). In the web process that is the ASGI server's loop,
bound at start-up (``bind_loop``, from ``shop.server``'s lifespan): without Redis, ``make run``
delivers in its request threads and the in-memory layer is only reachable through that loop.
A process without a server (a Celery worker, a management command) gets a loop of its own in
a daemon thread on first use, holding one Redis connection for all its sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.money import to_decimal_string

logger = logging.getLogger(__name__)

FEED_GROUP = "orders.feed"
# A send that takes longer than this is abandoned (Redis unreachable or silent).
SEND_TIMEOUT_SECONDS = 2.0

# Each loop with the pid of the process it runs in: a forked child (a prefork Celery worker)
# inherits the objects but not the threads running them, and must start its own.
_bound_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_own_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_own_loop_lock = threading.Lock()


def order_group(order_no: str) -> str:
    """The group an order's sockets join: order numbers are ``[A-Z0-9]``, valid group names."""
    return f"order.{order_no}"


def masked_email(email: str) -> str:
    """``buyer@example.com`` → ``b***@example.com``: enough to recognise a buyer, not to
    write to them (the feed is for staff, who see buyer emails masked)."""
    local, sep, domain = (email or "").partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


def status_message(order_no: str, status: str) -> dict[str, Any]:
    """What the order page's socket sends (contract §7)."""
    return {"type": "order.status", "order_no": order_no, "status": status}


def feed_message(order: Any, *, status: str, event: str) -> dict[str, Any]:
    """One line of the owner's feed. ``product_id``, not the product's name: the name would
    cost a query here; the feed's consumer resolves it, and only while someone watches."""
    return {
        "type": "order.feed",
        "event": event,
        "order_no": order.order_no,
        "product_id": order.product_id,
        "amount": to_decimal_string(order.amount, order.currency),
        "currency": order.currency,
        "status": status,
        "email": masked_email(order.email),
        "at": timezone.now().isoformat(),
    }


def status_changed(order: Any, status: str) -> None:
    """After the current transaction commits, push ``order``'s new ``status`` to its page and
    to the feed. Call once per committed change (``orders.transitions`` does)."""
    sends = [
        (order_group(order.order_no), status_message(order.order_no, status)),
        (FEED_GROUP, feed_message(order, status=status, event="status")),
    ]
    transaction.on_commit(lambda: _publish(sends), robust=True)


def order_created(order: Any) -> None:
    """After the checkout commits, tell the feed about the new (pending) order."""
    sends = [(FEED_GROUP, feed_message(order, status=order.status, event="created"))]
    transaction.on_commit(lambda: _publish(sends), robust=True)


def payment_failed(*, event_id: int, error: BaseException) -> None:
    """A payment event failed to process (it is retried): the feed shows it at once. The
    failure path only, so the one query for the order number it names costs a delivery
    nothing; a database that is down skips the line rather than raising again."""
    from orders.models import PaymentEvent

    try:
        payload = PaymentEvent.objects.filter(pk=event_id).values_list("payload", flat=True)[0]
        obj = (payload.get("data") or {}).get("object") or {}
        metadata = obj.get("metadata") or {}
        order_no = str(metadata.get("order_no") or obj.get("client_reference_id") or "")
    except Exception:
        logger.warning("live update for failed payment event %s skipped", event_id)
        return
    _publish(
        [
            (
                FEED_GROUP,
                {
                    "type": "order.feed",
                    "event": "failure",
                    "order_no": order_no,
                    "product_id": None,
                    "amount": "",
                    "currency": "",
                    "status": "failed",
                    "email": "",
                    "error": f"{type(error).__name__}: {error}"[:200],
                    "at": timezone.now().isoformat(),
                },
            )
        ]
    )


# --- sending ---------------------------------------------------------------------------------


def bind_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Send through ``loop`` (the ASGI server's, which owns this process's channel layer);
    ``None`` unbinds it (server shut down)."""
    global _bound_loop
    _bound_loop = (os.getpid(), loop) if loop is not None else None


def _sender_loop() -> asyncio.AbstractEventLoop:
    pid = os.getpid()
    bound = _bound_loop
    if bound is not None and bound[0] == pid and bound[1].is_running():
        return bound[1]
    global _own_loop
    with _own_loop_lock:
        if _own_loop is None or _own_loop[0] != pid or _own_loop[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="kami-live-publisher", daemon=True
            ).start()
            _own_loop = (pid, loop)
        return _own_loop[1]


async def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in sends:
        await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_SECONDS)


def _log_failure(future: Future) -> None:
    exc = future.exception()
    if exc is not None:
        logger.warning(
            "live update not sent (%s: %s); pages fall back to polling", type(exc).__name__, exc
        )


def _publish(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Hand ``sends`` to the sender loop and return at once; never raises."""
    try:
        coroutine: Coroutine[Any, Any, None] = _send_all(sends)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, _sender_loop())
        except BaseException:
            coroutine.close()
            raise
        future.add_done_callback(_log_failure)
    except Exception:
        logger.exception("live update not queued; pages fall back to polling")
