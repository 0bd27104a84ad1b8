"""What the after-sales messages say, rendered when sent (``orders.outbox.content``'s
registry; joined to it in ``orders.apps``). Rows hold references only: the reply is read from
its ticket, a replaced key is decrypted from the order at this moment, the "my orders" link is
signed now (it expires a day after it was sent, not after it was asked for)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from cardpool.selectors import keys_for_order
from orders.models import Order, OrderStatus
from orders.outbox.content import Content, callback_renderer, message_order, order_url
from orders.outbox.errors import PermanentFailure
from orders.outbox.models import MessageChannel, MessagePurpose, OutboxMessage
from orders.support.models import TicketReply
from shop.models import Product, ShopSettings


def _reply_text(message: OutboxMessage) -> tuple[Order, str, str]:
    order = message_order(message)
    reply = (
        TicketReply.objects.select_related("ticket").filter(pk=message.payload.get("reply")).first()
    )
    if reply is None:
        raise PermanentFailure("the reply is gone")
    return order, reply.ticket.ticket_no, reply.message


def _reply_email(message: OutboxMessage) -> Content:
    order, ticket_no, text = _reply_text(message)
    subject = _("Re: your ticket %(ticket)s — order %(order)s") % {
        "ticket": ticket_no,
        "order": order.order_no,
    }
    body = "\n".join(
        [
            _("The shop answered your ticket %(ticket)s:") % {"ticket": ticket_no},
            "",
            text,
            "",
            _("See the order and the whole conversation: %(url)s") % {"url": order_url(order)},
        ]
    )
    return Content(subject=subject, text=body)


def _reply_sms(message: OutboxMessage) -> Content:
    order, ticket_no, _text = _reply_text(message)
    shop = ShopSettings.load().shop_name
    return Content(
        text=_("%(shop)s answered your ticket %(ticket)s: %(url)s")
        % {"shop": shop, "ticket": ticket_no, "url": order_url(order)}
    )


def _reply_inbox(message: OutboxMessage) -> Content:
    _order_, ticket_no, text = _reply_text(message)
    return Content(subject=_("Answer to your ticket %(ticket)s") % {"ticket": ticket_no}, text=text)


def _replaced_keys(message: OutboxMessage) -> tuple[Order, int]:
    order = message_order(message)
    if order.status not in (OrderStatus.DELIVERED, OrderStatus.REFUNDED):
        raise PermanentFailure(f"order {order.order_no} has no delivered keys")
    return order, int(message.payload.get("slot") or 0)


def _replaced_email(message: OutboxMessage) -> Content:
    order, slot = _replaced_keys(message)
    keys = keys_for_order(order)
    if not 0 < slot <= len(keys):
        raise PermanentFailure("the replaced slot holds no key")
    body = "\n".join(
        [
            _("We replaced key %(slot)d of your order %(order)s. Your new key:")
            % {"slot": slot, "order": order.order_no},
            "",
            f"  {keys[slot - 1]}",
            "",
            _("The old key no longer works. All your keys: %(url)s") % {"url": order_url(order)},
        ]
    )
    subject = _("Your replacement key — order %(order)s") % {"order": order.order_no}
    return Content(subject=subject, text=body)


def _replaced_sms(message: OutboxMessage) -> Content:
    order, _slot = _replaced_keys(message)
    shop = ShopSettings.load().shop_name
    return Content(
        text=_("%(shop)s: a new key for order %(order)s is ready: %(url)s")
        % {"shop": shop, "order": order.order_no, "url": order_url(order)}
    )


def _replaced_inbox(message: OutboxMessage) -> Content:
    order, slot = _replaced_keys(message)
    return Content(
        subject=_("Key %(slot)d was replaced") % {"slot": slot},
        text=_("The old key no longer works; the new one is shown on this page."),
    )


def _my_orders_email(message: OutboxMessage) -> Content:
    from orders.support.my_orders import MAX_AGE_HOURS, my_orders_url

    url = f"{settings.SITE_URL}{my_orders_url(message.recipient)}"
    body = "\n".join(
        [
            _("Someone (hopefully you) asked for the orders placed with this email address."),
            "",
            _("Open this link within %(hours)d hours to see them:") % {"hours": MAX_AGE_HOURS},
            url,
            "",
            _("If you did not ask for it, ignore this email: nothing changes."),
        ]
    )
    shop = ShopSettings.load().shop_name
    return Content(subject=_("Your orders at %(shop)s") % {"shop": shop}, text=body)


def _restock_email(message: OutboxMessage) -> Content:
    product = Product.objects.filter(pk=message.payload.get("product")).first()
    if product is None:
        raise PermanentFailure("the product is gone")
    url = f"{settings.SITE_URL}{reverse('product-page', args=[product.slug])}"
    body = "\n".join(
        [
            _("%(product)s is back in stock.") % {"product": product.name},
            "",
            _("Buy it here before it sells out again: %(url)s") % {"url": url},
            "",
            _("You asked us to tell you once; this is the only message about it."),
        ]
    )
    return Content(subject=_("%(product)s is back") % {"product": product.name}, text=body)


P, C = MessagePurpose, MessageChannel
RENDERERS: dict[tuple[str, str], Callable[[OutboxMessage], Content]] = {
    (P.TICKET_REPLY, C.EMAIL): _reply_email,
    (P.TICKET_REPLY, C.SMS): _reply_sms,
    (P.TICKET_REPLY, C.INBOX): _reply_inbox,
    (P.TICKET_REPLY, C.CALLBACK): callback_renderer("order.ticket_reply"),
    (P.KEY_REPLACED, C.EMAIL): _replaced_email,
    (P.KEY_REPLACED, C.SMS): _replaced_sms,
    (P.KEY_REPLACED, C.INBOX): _replaced_inbox,
    (P.KEY_REPLACED, C.CALLBACK): callback_renderer("order.key_replaced"),
    (P.MY_ORDERS_LINK, C.EMAIL): _my_orders_email,
    (P.RESTOCK_NOTICE, C.EMAIL): _restock_email,
}
