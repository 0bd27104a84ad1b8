"""The product page reads the quantity strictly, as the API does (tests/orders/test_api.py):
``int()`` alone took "1_0" as 10, full-width digits and "+2" too (issue "Owner security and
hardening", "strict integer parsing")."""

from __future__ import annotations

import pytest

from orders.models import Order
from tests.factories import stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("quantity", ["1_0", "１０", "+2", "2.0", "1e1", "true", "0x2", " "])
def test_product_page_quantity_is_plain_digits_only(client, quantity):
    stock_product(20, slug="strict", max_per_order=20)
    response = client.post("/p/strict", {"email": "strict@example.com", "quantity": quantity})
    assert response.status_code == 422, quantity
    assert "at least 1" in response.content.decode()
    assert not Order.objects.exists()


def test_product_page_quantity_in_digits_still_buys(client):
    stock_product(20, slug="strict", max_per_order=20)
    response = client.post("/p/strict", {"email": "strict@example.com", "quantity": "10"})
    assert response.status_code == 302
    assert Order.objects.get().quantity == 10
