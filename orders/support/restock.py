""" "Notify me when it is back": a subscription per product and email, and one notice each on
restock, through the outbox.

The card pool's ``keys_imported`` (sent after an import committed) reaches
``restock_notices_send``: in one transaction it claims the product's open subscriptions
(``FOR UPDATE SKIP LOCKED``: two imports at once split them, never share one), writes one
outbox message each — its idempotency key names the subscription, and that key is unique —
and closes them. A notice is thus written once, and sent by the outbox whatever the broker does.
"""

from __future__ import annotations

from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import InvalidInput, RateLimited
from core.ratelimit import RateLimit
from orders.outbox.models import MessageChannel, MessagePurpose
from orders.outbox.services import Draft, messages_enqueue
from orders.services import normalise_email
from orders.support.models import RestockSubscription
from shop.models import Product

PER_IP = RateLimit("restock-subscribe-ip", limit=20, window_seconds=3600)
BATCH = 500


def restock_subscribe(*, product: Product, email: str, ip: str | None) -> None:
    """Subscribe ``email`` to ``product``'s restock; subscribing again changes nothing."""
    email = normalise_email(email or "")
    try:
        validate_email(email)
    except Exception:
        raise InvalidInput(_("Enter a valid email address.")) from None
    decision = PER_IP.hit(ip or "unknown")
    if not decision.allowed:
        raise RateLimited(
            _("Too many requests: try again later."), retry_after=decision.retry_after
        )
    RestockSubscription.objects.bulk_create(
        [RestockSubscription(product=product, email=email)], ignore_conflicts=True
    )


def restock_notices_send(*, product_id: int) -> int:
    """One notice per open subscription of the product, and the subscriptions closed."""
    sent = 0
    while True:
        with transaction.atomic():
            subs = list(
                RestockSubscription.objects.select_for_update(skip_locked=True)
                .filter(product_id=product_id, notified_at__isnull=True)
                .order_by("pk")[:BATCH]
            )
            if not subs:
                return sent
            messages_enqueue(
                [
                    Draft(
                        purpose=MessagePurpose.RESTOCK_NOTICE,
                        channel=MessageChannel.EMAIL,
                        recipient=sub.email,
                        subject=f"subscription-{sub.pk}",
                        payload={"product": product_id},
                    )
                    for sub in subs
                ]
            )
            RestockSubscription.objects.filter(pk__in=[s.pk for s in subs]).update(
                notified_at=timezone.now()
            )
            sent += len(subs)
