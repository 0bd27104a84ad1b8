"""The WebSockets of contract §7 through Channels' communicator: who may open them, what they
send on connect, and the delivery pushed once it commits (Redis and in-memory layers)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders import live
from orders.access import COOKIE, LOOKUP_FAILURES, grant_access
from orders.models import Order
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import build_event, checkout_session_object, encode
from orders.payments.stripe_events import sign_payload as sign
from orders.services import CheckoutRequest, order_create, order_expire
from shop.server import websocket_application
from tests.factories import CardKeyFactory, OrderFactory, ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PASSWORD = "open sesame 42"


@pytest.fixture
def order():
    product = ProductFactory(name="Game Key", price=1250)
    CardKeyFactory(product=product, plaintext="SECRET-KEY-1")
    return OrderFactory(product=product, email="Buyer.One@example.com")


def elsewhere(function: Callable) -> Callable[..., Awaitable]:
    """``function`` in a thread of its own, as a worker or another request would run it, its
    database connection closed afterwards (the test database must be droppable)."""

    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(call, thread_sensitive=False)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario on a fresh event loop, in a thread of its own: the browser tests
    leave Playwright's loop running in the main thread, where ``async_to_sync`` refuses. The
    consumers' database calls run in that thread too; its connection is closed after."""
    failure: list[BaseException] = []

    def main() -> None:
        try:
            async_to_sync(scenario)()
        except BaseException as exc:
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the scenario did not finish"
    if failure:
        raise failure[0]


def socket(path: str, *, cookie: str = "", origin: str | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(websocket_application(), path, headers=headers)
    communicator.scope["client"] = ("127.0.0.1", 50000)  # as a server fills it in
    return communicator


def owner_cookie(order_no: str) -> str:
    """The ``kami_orders`` grant the browser that checked out holds (``grant_access``)."""
    request = RequestFactory().get("/")
    response = HttpResponse()
    grant_access(request, response, order_no)
    return f"{COOKIE}={response.cookies[COOKIE].value}"


async def refused(communicator: WebsocketCommunicator) -> tuple:
    outcome = await communicator.connect(timeout=5)
    assert outcome[0] is False, "the handshake was accepted"
    return outcome


def pay(order: Order) -> None:
    """The Stripe webhook's path, in this (worker-like) thread: stored, processed, committed."""
    payload = encode(build_event("checkout.session.completed", checkout_session_object(order)))
    from django.conf import settings

    payment_event_receive(payload=payload, signature=sign(payload, settings.STRIPE_WEBHOOK_SECRET))


# --- who may open /ws/orders/{order_no} ------------------------------------------------------


def test_stranger_unknown_order_and_wrong_credentials_are_refused_alike(order):
    async def scenario():
        outcomes = [
            await refused(socket(f"/ws/orders/{order.order_no}")),
            await refused(socket("/ws/orders/K000000AAAAAAAAAAAAAAAA")),
            await refused(socket("/ws/orders/K000000AAAAAAAAAAAAAAAA?email=buyer.one@example.com")),
            await refused(socket(f"/ws/orders/{order.order_no}?email=someone@example.com")),
            await refused(socket(f"/ws/orders/{order.order_no}?query_password=guess")),
            await refused(socket(f"/ws/orders/{order.order_no}", cookie=owner_cookie("KOTHER"))),
            await refused(socket("/ws/orders/not-an-order")),
            await refused(socket("/ws/nothing/here")),
        ]
        assert len(set(outcomes)) == 1, outcomes

    run(scenario)


@pytest.mark.parametrize("how", ["cookie", "email", "query_password"])
def test_buyer_gets_the_current_status_on_connect(order, how):
    Order.objects.filter(pk=order.pk).update(query_password_hash=_hash(PASSWORD))
    path, cookie = f"/ws/orders/{order.order_no}", ""
    if how == "cookie":
        cookie = owner_cookie(order.order_no)
    elif how == "email":
        path += "?email=buyer.one%40EXAMPLE.com"  # normalised like the lookup
    else:
        path += f"?query_password={PASSWORD.replace(' ', '+')}"

    async def scenario():
        communicator = socket(path, cookie=cookie)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        assert first == {"type": "order.status", "order_no": order.order_no, "status": "pending"}
        await communicator.disconnect()

    run(scenario)


def _hash(password: str) -> str:
    from orders.query_passwords import query_password_hash

    return query_password_hash(password)


def test_wrong_credentials_count_toward_the_lookup_rate_limit(order):
    """Socket guesses are lookups: after 30 failures even the right email is refused."""

    async def scenario():
        for i in range(LOOKUP_FAILURES.limit):
            await refused(socket(f"/ws/orders/{order.order_no}?email=guess{i}@example.com"))
        await refused(socket(f"/ws/orders/{order.order_no}?email=buyer.one@example.com"))

    run(scenario)
    # The page's lookup, from the same address, is refused too: one counter for both.
    answer = Client(REMOTE_ADDR="127.0.0.1").get(
        f"/api/v1/orders/{order.order_no}", {"email": "buyer.one@example.com"}
    )
    assert answer.status_code == 429


def test_a_foreign_origin_is_refused(order):
    with override_settings(ALLOWED_HOSTS=["shop.example"]):

        async def scenario():
            cookie = owner_cookie(order.order_no)
            path = f"/ws/orders/{order.order_no}"
            await refused(socket(path, cookie=cookie, origin="https://evil.example"))
            communicator = socket(path, cookie=cookie, origin="https://shop.example")
            assert (await communicator.connect(timeout=5))[0]
            await communicator.disconnect()

        run(scenario)


# --- pushed after commit ---------------------------------------------------------------------


def _delivery_is_pushed(order: Order) -> None:
    async def scenario():
        communicator = socket(f"/ws/orders/{order.order_no}", cookie=owner_cookie(order.order_no))
        assert (await communicator.connect(timeout=5))[0]
        assert (await communicator.receive_json_from(timeout=5))["status"] == "pending"
        await elsewhere(pay)(order)
        pushed = await communicator.receive_json_from(timeout=5)
        assert pushed == {"type": "order.status", "order_no": order.order_no, "status": "delivered"}
        # Paid and delivered in one transition: one message, of where it ended.
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)
    assert Order.objects.get(pk=order.pk).status == "delivered"


def test_delivery_is_pushed_through_redis(order):
    """A worker-like thread (no server loop) publishes over Redis to the socket's layer."""
    _delivery_is_pushed(order)


def test_delivery_is_pushed_through_the_in_memory_layer(order):
    """``make run`` without Redis: the server's loop owns the layer and receives the sends."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):

        async def bind():
            live.bind_loop(asyncio.get_running_loop())

        try:

            async def scenario():
                await bind()
                communicator = socket(
                    f"/ws/orders/{order.order_no}", cookie=owner_cookie(order.order_no)
                )
                assert (await communicator.connect(timeout=5))[0]
                assert (await communicator.receive_json_from(timeout=5))["status"] == "pending"
                await elsewhere(pay)(order)
                pushed = await communicator.receive_json_from(timeout=5)
                assert pushed["status"] == "delivered"
                await communicator.disconnect()

            run(scenario)
        finally:
            live.bind_loop(None)


def test_nothing_is_pushed_before_commit_or_for_a_rollback(order):
    async def scenario():
        communicator = socket(f"/ws/orders/{order.order_no}", cookie=owner_cookie(order.order_no))
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)

        def expire_then_roll_back():
            Order.objects.filter(pk=order.pk).update(hold_expires_at=order.created_at)
            with pytest.raises(RuntimeError), transaction.atomic():
                assert order_expire(order_id=order.pk)
                raise RuntimeError("rolled back")

        await elsewhere(expire_then_roll_back)()
        assert await communicator.receive_nothing(timeout=0.5)
        assert await elsewhere(order_expire)(order_id=order.pk)
        assert (await communicator.receive_json_from(timeout=5))["status"] == "expired"
        await communicator.disconnect()

    run(scenario)


def test_a_dead_channel_layer_never_fails_the_order(order, caplog):
    dead = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}], "prefix": "dead"},
        }
    }
    with override_settings(CHANNEL_LAYERS=dead), caplog.at_level(logging.WARNING, "orders.live"):
        pay(order)
        order.refresh_from_db()
        assert order.status == "delivered"
        assert order.payment_events.get().processed_at is not None
        _wait_for(lambda: "live update not sent" in caplog.text)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


# --- the owner's feed ------------------------------------------------------------------------


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_feed_refuses_anonymous_and_non_staff_users():
    User = get_user_model()
    buyer = User.objects.create_user("buyer", "buyer@example.com", "x")
    inactive = User.objects.create_user("gone", "gone@example.com", "x", is_staff=True)
    inactive.is_active = False
    inactive.save()

    cookies = [session_cookie(buyer), session_cookie(inactive)]

    async def scenario():
        await refused(socket("/ws/admin/orders"))
        for cookie in cookies:
            await refused(socket("/ws/admin/orders", cookie=cookie))

    run(scenario)


def test_feed_asks_for_the_second_factor_the_admin_asks_for(settings):
    """A staff member with an authenticator whose session never showed a code (a login through
    the promoter page, say) is no admin session, and no feed; nor is an owner who must enrol."""
    User = get_user_model()
    clerk = User.objects.create_user("clerk2", "clerk2@example.com", "x", is_staff=True)
    device = TOTPDevice.objects.create(user=clerk, name="phone", confirmed=True)
    without_code = session_cookie(clerk)
    client = Client()
    client.force_login(clerk)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    with_code = f"sessionid={session.session_key}"
    settings.KAMI_REQUIRE_OWNER_2FA = True
    owner = User.objects.create_superuser("boss2", "boss2@example.com", "x")
    owner_unenrolled = session_cookie(owner)

    async def scenario():
        await refused(socket("/ws/admin/orders", cookie=without_code))
        await refused(socket("/ws/admin/orders", cookie=owner_unenrolled))
        communicator = socket("/ws/admin/orders", cookie=with_code)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.disconnect()

    run(scenario)


def test_feed_pushes_new_orders_and_deliveries_to_staff(order):
    staff = get_user_model().objects.create_user("clerk", "clerk@example.com", "x", is_staff=True)
    cookie = session_cookie(staff)
    product_slug = order.product.slug
    CardKeyFactory(product=order.product, plaintext="SECRET-KEY-2")

    async def scenario():
        communicator = socket("/ws/admin/orders", cookie=cookie)
        assert (await communicator.connect(timeout=5))[0]
        await elsewhere(pay)(order)
        line = await communicator.receive_json_from(timeout=5)
        assert line["type"] == "order.feed" and line["event"] == "status"
        assert {k: line[k] for k in ("order_no", "product", "amount", "currency", "status")} == {
            "order_no": order.order_no,
            "product": "Game Key",
            "amount": "12.50",
            "currency": "USD",
            "status": "delivered",
        }
        assert line["email"] == "B***@example.com" and line["at"]
        assert "SECRET-KEY-1" not in json.dumps(line)

        created = await elsewhere(order_create)(
            req=CheckoutRequest(product=product_slug, quantity=1, email="new@example.com")
        )
        line = await communicator.receive_json_from(timeout=5)
        assert (line["event"], line["order_no"], line["status"]) == (
            "created",
            created.order_no,
            "pending",
        )
        await communicator.disconnect()

    run(scenario)
