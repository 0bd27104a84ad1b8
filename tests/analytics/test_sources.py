"""Where orders come from, recorded on the way: ``utm_source`` or an outside referrer of the
visit (kept in a cookie), stored with the order at checkout; product page views counted."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from analytics.models import OrderSource, ProductViewHour
from analytics.sources import SOURCE_COOKIE
from orders.models import Order
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _buy(client, slug: str = "game", email: str = "buyer@example.com"):
    return client.post(f"/p/{slug}", {"email": email, "quantity": "1"})


def test_utm_source_of_the_landing_visit_is_recorded_with_the_order(client):
    stock_product(5, slug="game")
    client.get("/?utm_source=Newsletter")
    assert client.cookies[SOURCE_COOKIE].value == "utm:newsletter"
    client.get("/p/game")  # browsing on: the source stays
    assert _buy(client).status_code == 302
    order = Order.objects.get()
    assert OrderSource.objects.filter(order_id=order.pk).values_list("kind", "value")[0] == (
        "utm",
        "newsletter",
    )


def test_an_outside_referrer_is_a_source_the_shop_itself_is_not(client):
    stock_product(5, slug="game")
    client.get("/p/game", HTTP_REFERER="https://www.Forum.example/thread/1")
    assert client.cookies[SOURCE_COOKIE].value == "referrer:forum.example"
    client.get("/p/game", HTTP_REFERER="http://testserver/")  # our own page: not a source
    assert client.cookies[SOURCE_COOKIE].value == "referrer:forum.example"
    _buy(client)
    assert OrderSource.objects.get().value == "forum.example"


def test_no_source_means_direct_and_no_row(client):
    stock_product(5, slug="game")
    _buy(client)
    assert Order.objects.count() == 1 and not OrderSource.objects.exists()


def test_a_tampered_cookie_is_ignored(client):
    stock_product(5, slug="game")
    client.cookies[SOURCE_COOKIE] = "utm:<script>"
    _buy(client)
    assert not OrderSource.objects.exists()


def test_product_views_are_counted_once_per_page_load(client):
    stock_product(5, slug="game")
    for _ in range(12):
        assert client.get("/p/game").status_code == 200
    client.get("/p/missing")  # a 404 is not a view
    client.post("/p/game", {"email": "bad", "quantity": "1"})  # a checkout is not a view
    assert ProductViewHour.objects.aggregate(n=Sum("views"))["n"] == 12
    assert ProductViewHour.objects.count() <= ProductViewHour.STRIPES
