"""Order tasks. Thin on purpose: load by id, call a service (HackSoft style).

Every task here is safe to run twice: processing checks ``processed_at`` under a row lock,
expiry and backorder delivery re-check status under a lock, and the email task records that
it sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from orders.delivery import backorders_deliver
from orders.emails import delivery_email_send
from orders.models import Order, OrderStatus, PaymentEvent
from orders.payments.processing import payment_event_process
from orders.services import orders_expire_lapsed

logger = logging.getLogger(__name__)

SWEEP_AFTER = timedelta(seconds=30)
# An event that failed this often needs a human (the failed-delivery alert says so); sweeping
# it forever would only pile retries on retries.
SWEEP_MAX_ATTEMPTS = 30


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
    """Re-enqueue stored events never processed (broker outage, crashed worker, lost task)."""
    cutoff = timezone.now() - SWEEP_AFTER
    ids = list(
        PaymentEvent.objects.filter(
            processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=SWEEP_MAX_ATTEMPTS
        )
        .order_by("attempts", "received_at")
        .values_list("pk", flat=True)[:500]
    )
    for event_id in ids:
        process_payment_event.delay(event_id)
    return len(ids)


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


@shared_task(autoretry_for=(Exception,), retry_backoff=5, max_retries=8, acks_late=True)
def send_delivery_email(order_id: int) -> bool:
    return delivery_email_send(order_id=order_id)
