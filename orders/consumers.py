"""The WebSockets (contract §7): an order's status for its page, and the owner's live feed.

Both decide at the handshake. A socket that may not see what it asks for is closed before it
is accepted, which the ASGI server answers ``403`` with no upgrade: the same answer for an
unknown order, someone else's order, a wrong email or password, a rate-limited client and a
path that matches nothing, so the socket tells a stranger nothing the lookup would not.

The messages come from ``orders.live`` through the channel layer; nothing here writes.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from core.client_ip import client_ip_of
from core.errors import RateLimited
from core.two_factor import admin_session_allowed
from orders.access import COOKIE, order_lookup, orders_in_cookie_value
from orders.live import FEED_GROUP, order_group, status_message
from orders.models import Order
from shop.models import Product

# ``K`` + yymmdd + 16 base32 characters (``orders.order_numbers``); anything else is refused
# before it costs a subscription or a query.
ORDER_NO = re.compile(r"[A-Z0-9]{4,32}")


def _query(scope: dict[str, Any]) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: values[0] for name, values in parsed.items() if values}


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def order_status_for(scope: dict[str, Any], order_no: str) -> str | None:
    """The order's status if this handshake may see it, else None: the order page's rule.

    The browser that placed it (its signed ``kami_orders`` cookie), or ``?email=`` /
    ``?query_password=`` checked exactly like a lookup, the same rate limit counting failures.
    """
    if order_no in orders_in_cookie_value(scope.get("cookies", {}).get(COOKIE)):
        status = Order.objects.filter(order_no=order_no).values_list("status", flat=True).first()
        if status is not None:
            return status
    query = _query(scope)
    email, password = query.get("email", ""), query.get("query_password", "")
    if not (email or password):
        return None
    client = scope.get("client") or ("", 0)
    ip = client_ip_of(peer=client[0] or "", forwarded_for=_header(scope, b"x-forwarded-for"))
    try:
        order = order_lookup(order_no=order_no, email=email, query_password=password, ip=ip)
    except RateLimited:
        return None
    return order.status if order is not None else None


class OrderStatusConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/orders/{order_no}``: the current status on connect, then every committed change."""

    async def connect(self) -> None:
        order_no = str(self.scope["url_route"]["kwargs"]["order_no"]).strip().upper()
        if not ORDER_NO.fullmatch(order_no):
            await self.close()
            return
        self.order_no = order_no
        # Subscribe before reading the status: a change that commits after the read is then
        # certain to arrive as a message, and one that committed before it is in the read.
        self.groups = [order_group(order_no)]
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        status = await database_sync_to_async(order_status_for)(self.scope, order_no)
        if status is None:
            await self.channel_layer.group_discard(self.groups[0], self.channel_name)
            self.groups = []
            await self.close()
            return
        await self.accept()
        self.last_status = status
        await self.send_json(status_message(order_no, status))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page has nothing to say; anything it sends is ignored."""

    async def order_status(self, event: dict[str, Any]) -> None:
        if event["status"] == self.last_status:
            return  # the change the connect-time read already reported
        self.last_status = event["status"]
        await self.send_json(status_message(self.order_no, event["status"]))


def may_watch_feed(user: Any, session: Any = None) -> bool:
    """Who may open the feed: whoever the admin site would let in with this session (an active
    staff account that passed its second factor), not merely a staff login made elsewhere."""
    return admin_session_allowed(user, session)


def _product_name(product_id: int) -> str:
    return Product.objects.filter(pk=product_id).values_list("name", flat=True).first() or ""


class OrderFeedConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/admin/orders``: new orders and every status change, for staff."""

    groups = [FEED_GROUP]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        # Decide before the base class joins the group: a refused socket never subscribes.
        allowed = database_sync_to_async(may_watch_feed)
        if not await allowed(self.scope.get("user"), self.scope.get("session")):
            self.groups = []
            await self.close()
            return
        self.product_names: dict[int, str] = {}
        await super().websocket_connect(message)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Nothing to receive."""

    async def order_feed(self, event: dict[str, Any]) -> None:
        line = {key: value for key, value in event.items() if key not in ("type", "product_id")}
        product_id = event.get("product_id")
        if product_id is not None and product_id not in self.product_names:
            self.product_names[product_id] = await database_sync_to_async(_product_name)(product_id)
        line["product"] = self.product_names.get(product_id, "") if product_id else ""
        await self.send_json({"type": "order.feed", **line})


class RefusedConsumer(AsyncJsonWebsocketConsumer):
    """Every other ``/ws/…`` path: refused like a stranger, not a 500 for a missing route."""

    async def connect(self) -> None:
        await self.close()
