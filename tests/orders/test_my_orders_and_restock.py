""" "My orders" by email (a signed, expiring link, sent only to the address on the orders, the
same answer whether or not any exist) and "notify me when it is back" (one notice per
subscriber on restock, exactly once)."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail, signing
from django.db import IntegrityError, transaction
from django.urls import reverse

from cardpool.services import keys_import
from orders.models import MessagePurpose, OutboxMessage, RestockSubscription
from orders.support.my_orders import PER_EMAIL, SALT, my_orders_token
from orders.support.restock import restock_notices_send
from tests.factories import OrderFactory, ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _ask(client, email: str):
    return client.post(reverse("my-orders"), {"email": email})


def _body(response) -> str:
    html = response.content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_answer_is_identical_whether_or_not_the_email_has_orders(
    client, django_capture_on_commit_callbacks
):
    order = OrderFactory(email="has.orders@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        with_orders = _ask(client, "Has.Orders@example.com")
        without = _ask(client, "nobody@example.com")
    assert with_orders.status_code == without.status_code == 200
    assert _body(with_orders) == _body(without)
    # Only the address on the orders got anything, and only one link.
    assert [m.to for m in mail.outbox] == [["has.orders@example.com"]]
    link = re.search(r"https?://\S+/my-orders/\S+", mail.outbox[0].body).group(0)
    listing = client.get(link[link.index("/my-orders/") :])
    assert listing.status_code == 200 and order.order_no in listing.content.decode()
    # The listing lets this browser open the order, as a lookup does.
    assert client.get(reverse("order-page", args=[order.order_no])).templates[0].name == (
        "orders/order.html"
    )


def test_requests_are_limited_per_email(client, django_capture_on_commit_callbacks):
    OrderFactory(email="flood@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            _ask(client, "flood@example.com").status_code for _ in range(PER_EMAIL.limit + 1)
        ]
    assert answers == [200] * PER_EMAIL.limit + [429]
    assert len(mail.outbox) == PER_EMAIL.limit


def test_a_forged_or_expired_link_lists_nothing(client, monkeypatch):
    order = OrderFactory(email="late@example.com")
    forged = client.get(reverse("my-orders-list", args=["not-a-token"]))
    assert forged.status_code == 404 and order.order_no not in forged.content.decode()
    token = my_orders_token("late@example.com")
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + 25 * 3600)
    expired = client.get(reverse("my-orders-list", args=[token]))
    assert expired.status_code == 404 and order.order_no not in expired.content.decode()
    assert signing.loads(token, salt=SALT)  # the same token, unexpired, would have been fine


def test_restock_notices_go_once_per_subscriber_and_close_the_subscription(
    client, django_capture_on_commit_callbacks
):
    product = ProductFactory(slug="gone-for-now")
    page = client.get(reverse("product-page", args=[product.slug])).content.decode()
    assert reverse("restock-notify", args=[product.slug]) in page
    for email in ("a@example.com", "b@example.com", "A@example.com"):
        client.post(reverse("restock-notify", args=[product.slug]), {"email": email})
    assert RestockSubscription.objects.count() == 2  # the same address once

    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="BACK-1\nBACK-2\n", source="cli")
    notices = OutboxMessage.objects.filter(purpose=MessagePurpose.RESTOCK_NOTICE)
    assert sorted(notices.values_list("recipient", flat=True)) == ["a@example.com", "b@example.com"]
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    assert not RestockSubscription.objects.filter(notified_at__isnull=True).exists()

    # A second restock (or a replayed signal) sends nothing more.
    assert restock_notices_send(product_id=product.pk) == 0
    with django_capture_on_commit_callbacks(execute=True):
        keys_import(product=product, text="BACK-3\n", source="cli")
    assert notices.count() == 2 and len(mail.outbox) == 2


def test_one_open_subscription_per_product_and_email_is_a_database_rule():
    product = ProductFactory()
    RestockSubscription.objects.create(product=product, email="x@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        RestockSubscription.objects.create(product=product, email="x@example.com")
