"""The delivery email: the buyer's second copy of their keys, sent after the delivery commits."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from cardpool.selectors import keys_for_order
from orders.models import Delivery, OrderStatus


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
    context = {
        "order": order,
        "keys": keys_for_order(order),
        "order_url": f"{settings.SITE_URL}{reverse('order-page', args=[order.order_no])}",
        "lookup_url": f"{settings.SITE_URL}{reverse('order-lookup')}",
    }
    message = EmailMultiAlternatives(
        subject=f"Your {order.product.name} key(s) — order {order.order_no}",
        body=render_to_string("emails/delivery.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string("emails/delivery.html", context), "text/html")
    message.send()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
    return True
