"""What a follow-up says on each channel, rendered when it is sent, in the order's language.

The email carries RFC 8058's one-click unsubscribe (``List-Unsubscribe`` with the signed
per-email link, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``) on every follow-up
except the key guide, which is about the order itself (transactional, like the delivery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import strip_tags

from orders.followups.models import TRANSACTIONAL, FollowUpPurpose, ProductFollowUps
from orders.followups.selectors import buyer_identity, is_unsubscribed, recommendations_for
from orders.followups.templates import Rendered, render_follow_up
from orders.followups.tokens import survey_url, unsubscribe_url
from orders.models import Order
from orders.outbox.content import Content, message_order, order_url
from orders.outbox.errors import NoLongerWanted
from orders.outbox.models import MessageChannel, OutboxMessage
from shop.models import ShopSettings
from shop.rich_text import rich_text


def follow_up_context(order: Order) -> dict[str, Any]:
    """The only names an owner's template sees: plain strings and a list of plain dicts."""
    settings_row = ProductFollowUps.objects.filter(product_id=order.product_id).first()
    return {
        "order_no": order.order_no,
        "product": order.product.local_name,
        "order_url": order_url(order),
        "buyer_name": order.email.partition("@")[0],
        "shop_name": ShopSettings.load().shop_name,
        "survey_url": survey_url(order.order_no),
        "video_url": settings_row.video_url if settings_row else "",
        "recommendations": recommendations_for(product_id=order.product_id),
        "how_to_html": settings_row.how_to_html if settings_row else "",
    }


def _rendered(message: OutboxMessage) -> tuple[Order, Rendered, dict[str, Any]]:
    """The follow-up's words, or ``NoLongerWanted`` when the buyer unsubscribed since it was
    queued: the due sweep checked before it wrote the outbox row, this is the last moment
    before the message leaves."""
    order = message_order(message)
    if message.purpose not in TRANSACTIONAL and is_unsubscribed(buyer_identity(order)):
        raise NoLongerWanted("the buyer unsubscribed")
    with translation.override(order.language):
        context = follow_up_context(order)
        rendered = render_follow_up(
            purpose=message.purpose,
            product_id=order.product_id,
            variant=str(message.payload.get("variant", "")),
            context=context,
        )
    return order, rendered, context


def _email(message: OutboxMessage) -> Content:
    order, rendered, context = _rendered(message)
    marketing = message.purpose not in TRANSACTIONAL
    link = unsubscribe_url(buyer_identity(order)) if marketing else ""
    page = {
        **context,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "guide_html": (
            rich_text(context["how_to_html"]) if message.purpose == FollowUpPurpose.HOW_TO else ""
        ),
        "guide_text": (
            strip_tags(context["how_to_html"]).strip()
            if message.purpose == FollowUpPurpose.HOW_TO
            else ""
        ),
        "unsubscribe_url": link,
    }
    with translation.override(order.language):
        text = render_to_string("emails/follow_up.txt", page)
        html = render_to_string("emails/follow_up.html", page)
    headers = (
        {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        if marketing
        else {}
    )
    return Content(subject=rendered.subject, text=text, html=html, headers=headers)


def _sms(message: OutboxMessage) -> Content:
    order, rendered, _ = _rendered(message)
    return Content(text=f"{rendered.subject}: {order_url(order)}")


def _inbox(message: OutboxMessage) -> Content:
    _, rendered, context = _rendered(message)
    text = rendered.text
    if message.purpose == FollowUpPurpose.HOW_TO:
        text = f"{text}\n\n{strip_tags(context['how_to_html']).strip()}"
    return Content(subject=rendered.subject, text=text)


FOLLOW_UP_RENDERERS: dict[tuple[str, str], Callable[[OutboxMessage], Content]] = {
    (purpose, channel): renderer
    for purpose in FollowUpPurpose.values
    for channel, renderer in (
        (MessageChannel.EMAIL, _email),
        (MessageChannel.SMS, _sms),
        (MessageChannel.INBOX, _inbox),
    )
}
