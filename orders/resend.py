"""Support's "Resend keys": the delivery message to the buyer again, always to the order's own
address and channels, so whoever asks for a resend never sees a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.events import OrderEventKind, event_keys_resent
from orders.locks import lock_order
from orders.models import OrderEvent, OrderStatus
from orders.outbox.services import delivery_resend

# One resend per order in this long: a support login cannot turn it into a mail bomb.
RESEND_MIN_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class ResendOutcome:
    queued: bool
    message: str


def order_keys_resend(*, order_id: int, actor: Any) -> ResendOutcome:
    """Put the delivery message in the outbox again (a new generation, down the order's chain),
    noted in the order's history with who asked. The order lock makes two clicks at once queue
    one message."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order is None:
            return ResendOutcome(False, "No such order.")
        if order.status != OrderStatus.DELIVERED:
            status = order.get_status_display()
            return ResendOutcome(False, f"{order.order_no}: not delivered ({status}), not sent.")
        recent = OrderEvent.objects.filter(
            order=order,
            kind=OrderEventKind.KEYS_RESENT,
            created_at__gte=timezone.now() - RESEND_MIN_INTERVAL,
        ).exists()
        if recent:
            return ResendOutcome(
                False, f"{order.order_no}: already resent in the last few minutes, not sent again."
            )
        if delivery_resend(order=order) is None:
            return ResendOutcome(False, f"{order.order_no}: no delivered keys, nothing sent.")
        event_keys_resent(order, actor=actor)
    return ResendOutcome(True, f"{order.order_no}: delivery message queued to the buyer.")
