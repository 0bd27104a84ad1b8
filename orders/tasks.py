"""Order tasks. Thin on purpose: load by id, call a service (HackSoft style).

Every task here is safe to run twice: processing checks ``processed_at`` under a row lock,
expiry and backorder delivery re-check status under a lock, and the outbox dispatcher claims
each message before it sends it.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from orders.delivery import backorders_deliver
from orders.followups.services import followups_send_due
from orders.models import Delivery, MessagePurpose, Order, OrderStatus
from orders.outbox.dispatch import messages_dispatch
from orders.outbox.services import delivery_messages_enqueue
from orders.payments.processing import payment_event_process
from orders.payments.sweep import payment_events_sweep
from orders.services import orders_expire_lapsed

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=10,
    acks_late=True,
)
def process_payment_event(event_id: int) -> bool:
    return payment_event_process(event_id=event_id)


@shared_task
def sweep_unprocessed_payment_events() -> int:
    """Process stored events whose task was lost or failed (``orders.payments.sweep``)."""
    return payment_events_sweep()


@shared_task(acks_late=True)
def dispatch_messages() -> int:
    """Send due outbox messages: kicked after each commit that writes some, and periodic."""
    return messages_dispatch()


def sweep_stranded_work() -> tuple[int, int]:
    """Both sweeps, for the thread inside each worker (``shop.celery``): it calls them
    directly, so they run while the broker is down, and a dead beat strands nothing."""
    return payment_events_sweep(), messages_dispatch()


@shared_task
def send_due_follow_ups() -> int:
    """Decide the follow-ups that came due (``orders.followups``): periodic."""
    return followups_send_due()


@shared_task
def expire_unpaid_orders() -> int:
    return orders_expire_lapsed()


@shared_task(autoretry_for=(Exception,), retry_backoff=2, max_retries=5, acks_late=True)
def deliver_backorders(product_id: int) -> int:
    return backorders_deliver(product_id=product_id)


@shared_task
def deliver_all_backorders() -> int:
    """Periodic safety net for restocks that reached the pool some other way."""
    product_ids = set(
        Order.objects.filter(status=OrderStatus.BACKORDERED).values_list("product_id", flat=True)
    )
    return sum(backorders_deliver(product_id=pid) for pid in product_ids)


@shared_task
def refund_overdue_backorders() -> int:
    """Periodic: backorders no keys reached within the owner's window get their money back."""
    # Lazy on purpose: a refund goes through the webhook inbox, which imports this module.
    from orders.backorder_refunds import backorders_refund_overdue

    return backorders_refund_overdue()


@shared_task(acks_late=True)
def send_delivery_email(order_id: int) -> bool:
    """The task deliveries queued before the outbox existed, still in Redis at an upgrade:
    it writes the order's outbox message if it has none (its email was never recorded)."""
    with transaction.atomic():
        delivery = Delivery.objects.select_related("order").filter(order_id=order_id).first()
        if delivery is None or delivery.emailed_at is not None:
            return False
        if delivery.order.messages.filter(purpose=MessagePurpose.DELIVERY).exists():
            return False
        delivery_messages_enqueue(order=delivery.order)
    return True
