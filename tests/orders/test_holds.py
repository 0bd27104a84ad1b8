"""Holds that cannot be hoarded (``orders.holds``), as the issue found them from outside.

One anonymous checkout of 4 keys made a 4-key product "Sold out" to everyone for 15 minutes,
18 unpaid orders from 18 addresses held all 40 keys of another, and per-address limits let 8
unpaid orders through from one IPv6 /64. Now unpaid orders hold at most the product's hold
share (half by default); beyond it checkout still succeeds without a hold and the first to
pay gets the keys; unpaid orders are capped per network as well as per address.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, TestCase
from django.utils import timezone

from cardpool.models import CardKey
from orders.holds import hold_cap
from orders.models import Order, OrderStatus
from orders.services import orders_expire_lapsed
from orders.stock import product_stock, shown_stock, with_stock
from shop.models import Product, ShopSettings
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def checkout(client: Client, product: str, *, quantity: int = 1, email: str = "a@example.com"):
    return client.post(
        "/api/v1/orders",
        {"product": product, "quantity": quantity, "email": email},
        content_type="application/json",
    )


def shown(client: Client, slug: str) -> int:
    """The stock every other buyer sees, on the API and the pages."""
    api = client.get(f"/api/v1/products/{slug}").json()["stock"]
    listed = {p["slug"]: p["stock"] for p in client.get("/api/v1/products").json()}[slug]
    assert api == listed
    page = Client().get(f"/p/{slug}").content.decode()
    catalog = Client().get("/").content.decode()
    assert ("Sold out" in page) == (api == 0) and ("Buy now" in page) == (api > 0)
    if api:
        assert "Sold out" not in catalog
    return api


def pay(order: Order) -> None:
    """A signed payment through the real inbox, processed as its task would after commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert post_event(Client(), completed_event(order)).status_code == 200


def from_address(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip)


# --- One client cannot make a product look sold out to everyone else ----------------------


def test_one_checkout_of_every_key_leaves_the_product_on_sale(client):
    """The finding: one anonymous POST with quantity 4 of a 4-key product."""
    stock_product(4, slug="four", max_per_order=4)
    response = checkout(client, "four", quantity=4)
    assert response.status_code == 201
    assert response.json()["held_until"] is None  # 4 is over the hold share of 2
    assert shown(client, "four") == 4
    assert not CardKey.objects.filter(status=CardKey.Status.RESERVED).exists()

    # Another buyer can still buy, with a hold, and pays first: served.
    other = checkout(Client(REMOTE_ADDR="192.0.2.50"), "four", quantity=1, email="b@example.com")
    assert other.status_code == 201 and other.json()["held_until"] is not None
    assert shown(client, "four") == 3
    pay(Order.objects.get(order_no=other.json()["order_no"]))
    assert Order.objects.get(order_no=other.json()["order_no"]).status == OrderStatus.DELIVERED


def test_one_address_repeating_checkouts_never_makes_it_sold_out(client):
    stock_product(4, slug="four", max_per_order=4)
    answers = [
        checkout(client, "four", quantity=q, email=f"b{i}@example.com")
        for i, q in enumerate((2, 2, 4))
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]  # 2 unpaid per address
    assert answers[0].json()["held_until"] and answers[1].json()["held_until"] is None
    assert shown(client, "four") == 2

    # After the window, the same again (from the next address: risk control's own rule
    # allows 3 orders of a product per address in 10 minutes): still never sold out.
    Order.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    orders_expire_lapsed()
    assert shown(client, "four") == 4
    same = Client(REMOTE_ADDR="127.0.0.2")
    again = [checkout(same, "four", quantity=4, email=f"again{i}@example.com") for i in (1, 2)]
    assert [a.status_code for a in again] == [201, 201]
    assert shown(client, "four") == 4


def test_eighteen_addresses_cannot_hold_all_forty_keys():
    """The finding: 18 unpaid orders from 18 addresses held all 40 keys of a product."""
    stock_product(40, slug="forty")
    answers = [
        checkout(from_address(f"203.0.{i}.7"), "forty", quantity=3, email=f"h{i}@example.com")
        for i in range(18)
    ]
    assert [a.status_code for a in answers] == [201] * 18  # nobody is refused
    held = CardKey.objects.filter(status=CardKey.Status.RESERVED).count()
    assert held == 18  # six holds of 3: a seventh would pass the share of 20
    assert sum(a.json()["held_until"] is not None for a in answers) == 6
    assert shown(Client(), "forty") == 40 - 18

    # Forty addresses of one key each: at most half is held, the rest is on sale.
    more = [
        checkout(from_address(f"198.18.{i}.9"), "forty", email=f"m{i}@example.com")
        for i in range(40)
    ]
    assert all(a.status_code == 201 for a in more)
    assert CardKey.objects.filter(status=CardKey.Status.RESERVED).count() == 20
    assert shown(Client(), "forty") == 20


def test_eight_addresses_of_one_ipv6_64_are_one_network():
    """The finding: 8 unpaid orders from one IPv6 /64. The network limit (4) stops it."""
    stock_product(40, slug="v6")
    answers = [
        checkout(from_address(f"2001:db8:7:1::{i + 1:x}"), "v6", email=f"v{i}@example.com")
        for i in range(8)
    ]
    assert [a.status_code for a in answers] == [201] * 4 + [429] * 4
    assert {a.json()["code"] for a in answers[4:]} == {"too_many_unpaid"}
    assert "network" in answers[4].json()["message"]
    # The next /64 is someone else.
    assert checkout(from_address("2001:db8:7:2::1"), "v6", email="n@example.com").status_code == 201
    assert Order.objects.filter(client_network="2001:db8:7:1::/64").count() == 4


def test_an_ipv4_24_is_one_network_and_a_mapped_address_counts_as_ipv4():
    stock_product(40, slug="v4")
    addresses = ["198.51.100.1", "198.51.100.2", "::ffff:198.51.100.3", "198.51.100.4"]
    for i, ip in enumerate(addresses):
        assert checkout(from_address(ip), "v4", email=f"v{i}@example.com").status_code == 201
    fifth = checkout(from_address("198.51.100.5"), "v4", email="v5@example.com")
    assert fifth.status_code == 429 and fifth.json()["code"] == "too_many_unpaid"
    assert checkout(from_address("198.51.101.1"), "v4", email="w@example.com").status_code == 201


def test_the_network_limit_is_the_owners_setting():
    stock_product(10, slug="net")
    ShopSettings.objects.update_or_create(pk=1, defaults={"max_unpaid_per_network": 1})
    assert checkout(from_address("192.0.2.1"), "net", email="a@example.com").status_code == 201
    assert checkout(from_address("192.0.2.2"), "net", email="b@example.com").status_code == 429


def test_paid_orders_do_not_count_towards_the_network_limit():
    product = stock_product(10, slug="paid")
    for i in range(4):
        response = checkout(from_address(f"192.0.2.{i + 1}"), "paid", email=f"p{i}@example.com")
        pay(Order.objects.get(order_no=response.json()["order_no"]))
    assert Order.objects.filter(product=product, status=OrderStatus.DELIVERED).count() == 4
    assert checkout(from_address("192.0.2.9"), "paid", email="q@example.com").status_code == 201


# --- Orders without a hold: the first to pay wins -----------------------------------------


def test_an_order_without_a_hold_that_pays_while_keys_remain_is_delivered(client):
    product = stock_product(4, slug="race", max_per_order=2)
    holder = Order.objects.get(
        order_no=checkout(from_address("192.0.2.1"), "race", quantity=2).json()["order_no"]
    )
    late = Order.objects.get(
        order_no=checkout(
            from_address("192.0.3.1"), "race", quantity=2, email="l@example.com"
        ).json()["order_no"]
    )
    assert holder.holds_keys and not late.holds_keys
    pay(late)  # pays first: takes the two keys nobody holds
    late.refresh_from_db()
    assert late.status == OrderStatus.DELIVERED and late.queued_at == late.paid_at
    pay(holder)  # the hold's promise is kept: its own two keys
    holder.refresh_from_db()
    assert holder.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(product=product, status=CardKey.Status.SOLD).count() == 4


def test_a_payer_without_a_hold_never_takes_the_keys_someone_holds():
    product = stock_product(2, slug="two")
    holder = OrderFactory(product=product)  # within the share of 1: holds its key
    first = OrderFactory(product=product, holds_keys=False, reserve=False)
    second = OrderFactory(product=product, holds_keys=False, reserve=False)
    pay(first)
    pay(second)
    statuses = {o.pk: Order.objects.get(pk=o.pk).status for o in (first, second)}
    assert statuses == {first.pk: OrderStatus.DELIVERED, second.pk: OrderStatus.BACKORDERED}
    assert Order.objects.get(pk=second.pk).backordered_at is not None
    pay(holder)
    assert Order.objects.get(pk=holder.pk).status == OrderStatus.DELIVERED


def test_a_backorder_gets_the_key_of_a_hold_that_lapses_unpaid():
    product = stock_product(1, slug="one")
    holder = OrderFactory(product=product)  # the floor: one key may always be held
    waiting = OrderFactory(product=product, holds_keys=False, reserve=False)
    pay(waiting)
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.BACKORDERED
    Order.objects.filter(pk=holder.pk).update(hold_expires_at=timezone.now())
    assert orders_expire_lapsed() == 1
    assert Order.objects.get(pk=holder.pk).status == OrderStatus.EXPIRED
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.DELIVERED


def test_a_hold_that_was_never_given_does_not_keep_a_place_in_line():
    """Paid inside its window, an order without a hold still queues from its payment: it was
    never promised keys, so an earlier-paid backorder stays ahead of it."""
    product = stock_product(0, slug="none")
    no_hold = OrderFactory(product=product, holds_keys=False, reserve=False)
    pay(no_hold)
    no_hold.refresh_from_db()
    assert no_hold.status == OrderStatus.BACKORDERED and no_hold.queued_at == no_hold.paid_at


def test_checkout_is_refused_only_when_too_few_keys_are_left_to_sell(client):
    stock_product(2, slug="p")
    assert checkout(client, "p", quantity=2).status_code == 201  # no hold: over the share
    refused = checkout(Client(REMOTE_ADDR="192.0.2.8"), "p", quantity=3, email="x@example.com")
    assert refused.status_code == 409 and refused.json()["code"] == "out_of_stock"
    assert refused.json()["message"] == "Only 2 left."


# --- The owner's settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sellable", "share", "floor", "cap"),
    [
        (40, 50, 1, 20),
        (4, 50, 1, 2),
        (3, 50, 1, 1),
        (1, 50, 1, 1),  # the floor: the last key can still be held
        (1, 50, 0, 0),
        (0, 50, 1, 0),
        (10, 100, 1, 10),
        (10, 0, 1, 0),  # 0 %: nothing is ever held
        (5, 50, 4, 4),
    ],
)
def test_hold_cap(sellable, share, floor, cap):
    assert hold_cap(sellable=sellable, share_percent=share, min_keys=floor) == cap


def test_a_hold_share_of_zero_holds_nothing_and_a_hundred_holds_everything(client):
    stock_product(4, slug="p", max_per_order=4)
    ShopSettings.objects.update_or_create(pk=1, defaults={"hold_share_percent": 0})
    assert checkout(client, "p", quantity=1).json()["held_until"] is None
    ShopSettings.objects.filter(pk=1).update(hold_share_percent=100)
    other = Client(REMOTE_ADDR="192.0.2.77")
    assert checkout(other, "p", quantity=4, email="b@example.com").json()["held_until"]
    assert shown(client, "p") == 0  # every key held, and the owner allowed exactly that


@pytest.mark.parametrize(
    ("unsold", "held", "owed", "share", "stock"),
    [
        (10, 0, 0, 50, 10),
        (10, 5, 0, 50, 5),  # within the share: shown as gone
        (5, 5, 0, 50, 3),  # beyond the share (the free ones sold): only the share counts
        (1, 1, 0, 50, 1),  # the floor's hold of the last key does not read "Sold out"
        (4, 0, 4, 50, 0),  # owed to backorders: sold out
        (10, 10, 0, 100, 0),
    ],
)
def test_the_stock_shown_counts_holds_only_up_to_the_share(unsold, held, owed, share, stock):
    assert shown_stock(unsold=unsold, held=held, owed=owed, share_percent=share) == stock
    product = stock_product(unsold, slug="s")
    keys = list(CardKey.objects.filter(product=product).order_by("pk"))
    if held:
        order = OrderFactory(product=product, quantity=held, reserve=False)
        for slot, key in enumerate(keys[:held], start=1):
            CardKey.objects.filter(pk=key.pk).update(
                status=CardKey.Status.RESERVED,
                order=order,
                slot=slot,
                reserved_until=order.hold_expires_at,
            )
    if owed:
        OrderFactory(product=product, quantity=owed, status=OrderStatus.BACKORDERED, reserve=False)
    annotated = with_stock(Product.objects.filter(pk=product.pk), share_percent=share).get()
    assert annotated.stock == stock  # the SQL and the Python agree
    ShopSettings.objects.update_or_create(pk=1, defaults={"hold_share_percent": share})
    assert product_stock(product.pk) == stock


# --- What the buyer is told ---------------------------------------------------------------


def test_the_product_page_tells_a_buyer_without_a_hold_before_they_pay(client):
    stock_product(4, slug="page", max_per_order=4)
    response = client.post("/p/page", {"email": "me@example.com", "quantity": "4"})
    assert response.status_code == 200  # not straight to the payment page
    html = response.content.decode()
    order = Order.objects.get()
    assert not order.holds_keys
    assert "No keys could be held for you" in html and "whoever pays first" in html
    assert "refunded in full automatically" in html and "24 hours" in html
    assert f'href="http://testserver/pay/sandbox/{order.order_no}"' in html
    page = client.get(f"/o/{order.order_no}").content.decode()  # the buyer's own browser
    assert 'data-testid="no-hold"' in page and "whoever pays first" in page


def test_a_buyer_with_a_hold_goes_straight_to_pay_and_sees_until_when(client):
    stock_product(4, slug="page")
    response = client.post("/p/page", {"email": "me@example.com", "quantity": "1"})
    assert response.status_code == 302 and "/pay/sandbox/" in response["Location"]
    order = Order.objects.get()
    page = client.get(f"/o/{order.order_no}").content.decode()
    assert 'data-testid="hold"' in page
    assert timezone.localtime(order.hold_expires_at).strftime("%H:%M") in page
