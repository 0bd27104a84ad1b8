"""What a message says, rendered when it is sent — never stored with its keys.

Each (purpose, channel) has one renderer. The delivery email is the only content with keys in
it: they are decrypted from the order at this moment, as the order page does. SMS, the site
inbox and callbacks point at the order page instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from cardpool.selectors import keys_for_order
from core.money import to_decimal_string
from orders.models import Order, OrderStatus
from orders.outbox.errors import PermanentFailure
from orders.outbox.models import MessageChannel, MessagePurpose, OutboxMessage
from shop.models import ShopSettings

# A delivery email goes out for an order that has its keys: delivered, or refunded since
# (the keys stay the buyer's record).
HAS_KEYS = frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED})


@dataclass(frozen=True)
class Content:
    subject: str = ""
    text: str = ""
    html: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # extra email headers


def order_url(order: Order) -> str:
    return f"{settings.SITE_URL}{reverse('order-page', args=[order.order_no])}"


def message_order(message: OutboxMessage) -> Order:
    """The message's order with its product, read once per sending: ``render`` reads it for
    the language and the renderer for the content (one query where there were two)."""
    order = getattr(message, "_order_for_rendering", None)
    if order is None and message.order_id is not None:
        order = Order.objects.select_related("product").filter(pk=message.order_id).first()
        message._order_for_rendering = order  # type: ignore[attr-defined]
    if order is None:
        raise PermanentFailure("the message names no order")
    return order


def order_facts(order: Order) -> dict[str, Any]:
    """The order as the owner's system sees it in a callback (no keys)."""
    return {
        "order_no": order.order_no,
        "status": order.status,
        "product": order.product.slug,
        "quantity": order.quantity,
        "amount": to_decimal_string(order.amount, order.currency),
        "currency": order.currency,
        "email": order.email,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "url": order_url(order),
    }


def _delivery_email(message: OutboxMessage) -> Content:
    order = message_order(message)
    keys = keys_for_order(order) if order.status in HAS_KEYS else []
    if not keys:
        raise PermanentFailure(f"order {order.order_no} has no delivered keys to send")
    context = {
        "order": order,
        "keys": keys,
        "usage": order.product.usage_instructions.strip(),
        "order_url": order_url(order),
        "lookup_url": f"{settings.SITE_URL}{reverse('order-lookup')}",
    }
    return Content(
        subject=_("Your %(product)s key(s) — order %(order_no)s")
        % {"product": order.product.local_name, "order_no": order.order_no},
        text=render_to_string("emails/delivery.txt", context),
        html=render_to_string("emails/delivery.html", context),
    )


def _delivery_sms(message: OutboxMessage) -> Content:
    order = message_order(message)
    shop = ShopSettings.load().shop_name
    return Content(
        text=_("%(shop)s: your %(product)s key(s) for order %(order_no)s are ready: %(url)s")
        % {
            "shop": shop,
            "product": order.product.local_name,
            "order_no": order.order_no,
            "url": order_url(order),
        }
    )


def _delivery_inbox(message: OutboxMessage) -> Content:
    order = message_order(message)
    lines = [
        _(
            "%(quantity)d key(s) of %(product)s were delivered to this order. "
            "They are shown on this page."
        )
        % {"quantity": order.quantity, "product": order.product.local_name}
    ]
    usage = order.product.usage_instructions.strip()
    if usage:
        lines += ["", _("How to use them:"), usage]
    return Content(
        subject=_("Your %(product)s key(s) are ready") % {"product": order.product.local_name},
        text="\n".join(lines),
    )


def callback_renderer(kind: str) -> Callable[[OutboxMessage], Content]:
    """A renderer of the owner's callback of type ``kind``: the order's facts, no keys."""

    def render(message: OutboxMessage) -> Content:
        order = message_order(message)
        return Content(
            data={
                "id": message.idempotency_key,
                "type": kind,
                "created": int(message.created_at.timestamp()),
                "data": order_facts(order),
            }
        )

    return render


def _owner_message(message: OutboxMessage) -> Content:
    """The owner's messages (alerts, the weekly summary, notifications) are written whole when
    queued: the text and, where there is one, the HTML are in the payload (figures, never
    keys); ``data`` is what a notification URL receives beside the text."""
    payload = message.payload
    return Content(
        subject=str(payload.get("subject", "")),
        text=payload["text"],
        html=str(payload.get("html", "")),
        data={key: payload[key] for key in ("url", "counts", "items") if key in payload},
    )


# The owner's notification destinations other than email (``orders.notices.channels``).
NOTICE_CHANNELS = (
    MessageChannel.TELEGRAM,
    MessageChannel.WECOM,
    MessageChannel.DINGTALK,
    MessageChannel.FEISHU,
    MessageChannel.BARK,
    MessageChannel.WEBHOOK,
)


RENDERERS: dict[tuple[str, str], Callable[[OutboxMessage], Content]] = {
    (MessagePurpose.DELIVERY, MessageChannel.EMAIL): _delivery_email,
    (MessagePurpose.DELIVERY, MessageChannel.SMS): _delivery_sms,
    (MessagePurpose.DELIVERY, MessageChannel.INBOX): _delivery_inbox,
    # The buyer's chain reached the owner's system: it is asked to tell the buyer its own way.
    (MessagePurpose.DELIVERY, MessageChannel.CALLBACK): callback_renderer("order.notify_buyer"),
    (MessagePurpose.ORDER_CALLBACK, MessageChannel.CALLBACK): callback_renderer("order.delivered"),
    (MessagePurpose.OWNER_ALERT, MessageChannel.EMAIL): _owner_message,
    (MessagePurpose.WEEKLY_SUMMARY, MessageChannel.EMAIL): _owner_message,
    **{(MessagePurpose.OWNER_ALERT, channel): _owner_message for channel in NOTICE_CHANNELS},
}


def render(message: OutboxMessage) -> Content:
    """The message in its reader's language: a buyer's in the order's (chosen at checkout),
    the owner's in the shop's."""
    from orders.followups.content import FOLLOW_UP_RENDERERS  # it builds on this module

    renderer = FOLLOW_UP_RENDERERS.get((message.purpose, message.channel)) or RENDERERS.get(
        (message.purpose, message.channel)
    )
    if renderer is None:
        raise PermanentFailure(f"{message.purpose} cannot be sent by {message.channel}")
    language = settings.LANGUAGE_CODE
    if message.purpose != MessagePurpose.OWNER_ALERT and message.order_id is not None:
        language = message_order(message).language or language
    with translation.override(language):
        return renderer(message)
