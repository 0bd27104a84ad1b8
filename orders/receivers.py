"""Orders' answers to what other apps announce. Orders decides what to do with their facts."""

from __future__ import annotations

from core.after_commit import enqueue_after_commit
from orders.tasks import deliver_backorders


def serve_backorders_on_restock(*, product_id: int, count: int, **_: object) -> None:
    """Keys reached the pool (``cardpool.signals.keys_imported``, sent after the import
    committed): paid backorders of the product are first in line for them."""
    if count:
        enqueue_after_commit(deliver_backorders, product_id)


def notify_subscribers_on_restock(*, product_id: int, count: int, **_: object) -> None:
    """The same signal: everyone who asked to hear when the product is back gets one notice
    (written to the outbox here, so a broker outage loses none)."""
    if count:
        from orders.support.restock import restock_notices_send

        restock_notices_send(product_id=product_id)
