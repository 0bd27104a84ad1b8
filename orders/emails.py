"""The delivery email: the buyer's second copy of their keys, sent after the delivery commits,
and sent again when support asks (``order_keys_resend``) — always to the order's own address,
so whoever asks for a resend never sees a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cardpool.selectors import keys_for_order
from orders.events import OrderEventKind, event_keys_resent
from orders.locks import lock_order
from orders.models import Delivery, Order, OrderEvent, OrderStatus

# One resend per order in this long: a support login cannot turn it into a mail bomb.
RESEND_MIN_INTERVAL = timedelta(minutes=5)


def _delivery_message(order: Order) -> EmailMultiAlternatives:
    """The email in the order's language (the buyer's at checkout), whoever sends it."""
    with translation.override(order.language or settings.LANGUAGE_CODE):
        return _delivery_message_in_active_language(order)


def _delivery_message_in_active_language(order: Order) -> EmailMultiAlternatives:
    context = {
        "order": order,
        "keys": keys_for_order(order),
        "order_url": f"{settings.SITE_URL}{reverse('order-page', args=[order.order_no])}",
        "lookup_url": f"{settings.SITE_URL}{reverse('order-lookup')}",
    }
    message = EmailMultiAlternatives(
        subject=_("Your %(product)s key(s) — order %(order_no)s")
        % {"product": order.product.local_name, "order_no": order.order_no},
        body=render_to_string("emails/delivery.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string("emails/delivery.html", context), "text/html")
    return message


def delivery_email_send(*, order_id: int) -> bool:
    """Email the keys of a delivered order once; True if this call sent it."""
    # One query for the delivery, its order and product: this runs once per sale.
    delivery = (
        Delivery.objects.select_related("order__product")
        .filter(order_id=order_id, emailed_at__isnull=True)
        .first()
    )
    if delivery is None:
        return False
    order = delivery.order
    if order.status not in (OrderStatus.DELIVERED, OrderStatus.REFUNDED):
        return False
    _delivery_message(order).send()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
    return True


def delivery_email_resend(*, order_id: int) -> bool:
    """Email a delivered order's keys to its buyer again; True if sent."""
    order = (
        Order.objects.select_related("product")
        .filter(pk=order_id, status=OrderStatus.DELIVERED)
        .first()
    )
    if order is None:
        return False
    _delivery_message(order).send()
    return True


@dataclass(frozen=True)
class ResendOutcome:
    queued: bool
    message: str


def order_keys_resend(*, order_id: int, actor: Any) -> ResendOutcome:
    """Queue the delivery email to the buyer again, noted in the order's history with who
    asked. The order lock makes two clicks at once queue one email."""
    from orders.tasks import resend_delivery_email  # lazy: orders.tasks imports this module

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
        event_keys_resent(order, actor=actor)
        resend_delivery_email.delay_on_commit(order.pk)
    return ResendOutcome(True, f"{order.order_no}: delivery email queued to the buyer.")
