"""The owner's live order feed page (``/admin/live/``): staff only, the latest orders masked."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_the_feed_page_is_for_staff_and_lists_orders_masked(client):
    order = OrderFactory(product=stock_product(1, name="Feed Game"), email="reader@example.com")
    User = get_user_model()
    answer = client.get("/admin/live/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    client.force_login(User.objects.create_user("buyer", "b@example.com", "x"))
    assert client.get("/admin/live/").status_code == 302
    client.force_login(User.objects.create_user("clerk", "c@example.com", "x", is_staff=True))
    page = client.get("/admin/live/")
    assert page.status_code == 200
    html = page.content.decode()
    assert order.order_no in html and "Feed Game" in html and "9.90 USD" in html
    assert "r***@example.com" in html and "reader@example.com" not in html
    assert 'data-socket-path="/ws/admin/orders"' in html
    assert "<script>" not in html  # the strict CSP: behaviour from static files only


def test_the_admin_home_links_to_the_feed(admin_client):
    assert 'href="/admin/live/"' in admin_client.get("/admin/").content.decode()
