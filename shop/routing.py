"""The WebSocket routes (contract §7), served by ``shop.server`` beside HTTP.

The order page's socket needs only its cookies (the ``kami_orders`` grant), not the session
and user that ``AuthMiddlewareStack`` loads with two queries per handshake; the owner's feed
needs the logged-in user. Paths that match nothing are refused like a stranger.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.sessions import CookieMiddleware
from django.urls import path, re_path

from orders.consumers import OrderFeedConsumer, OrderStatusConsumer, RefusedConsumer

websocket_urlpatterns = [
    path("ws/orders/<str:order_no>", CookieMiddleware(OrderStatusConsumer.as_asgi())),
    path("ws/admin/orders", AuthMiddlewareStack(OrderFeedConsumer.as_asgi())),
    re_path(r"", RefusedConsumer.as_asgi()),
]
