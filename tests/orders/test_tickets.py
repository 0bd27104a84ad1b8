"""Tickets (issue "After the sale", contract §8): the buyer opens one from the API or the order
page, the shop replies (the buyer sees it and gets a message), replaces a key exactly once
however many replaces race, or refunds; a wrong email is a 404 that counts like a lookup."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from cardpool.crypto import encrypt_secret, fingerprint
from cardpool.models import CardKey
from cardpool.selectors import keys_for_order
from orders.access import LOOKUP_FAILURES
from orders.events import OrderEventKind
from orders.models import (
    KeyReplacement,
    MessagePurpose,
    Order,
    OrderEvent,
    OrderStatus,
    OutboxMessage,
    Ticket,
)
from orders.support.actions import order_key_replace
from orders.support.tickets import OPEN_PER_ORDER, ticket_open
from tests.admin.helpers import admin_login, role_user
from tests.factories import OrderFactory, ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

OLD_KEY = "OLD-KEY-0001"


def add_keys(product, *plaintexts: str) -> None:
    CardKey.objects.bulk_create(
        [
            CardKey(product=product, secret=encrypt_secret(p), fingerprint=fingerprint(p))
            for p in plaintexts
        ]
    )


def delivered(product=None, plaintext: str = OLD_KEY) -> Order:
    product = product or ProductFactory()
    now = timezone.now()
    order = OrderFactory(
        product=product,
        status=OrderStatus.DELIVERED,
        paid_at=now,
        delivered_at=now,
        payment_intent="pi_test_ticket",
    )
    CardKey.objects.create(
        product=product,
        secret=encrypt_secret(plaintext),
        fingerprint=fingerprint(plaintext),
        status=CardKey.Status.SOLD,
        order=order,
        slot=1,
        sold_at=now,
    )
    return order


def tickets_url(order: Order) -> str:
    return f"/api/v1/orders/{order.order_no}/tickets"


def test_open_a_ticket_by_api_and_read_it_with_its_replies(client):
    order = delivered()
    response = client.post(
        tickets_url(order),
        {"email": order.email, "kind": "key_missing", "message": "No key <b>here</b>"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open" and body["ticket_no"].startswith("T")
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.TICKET_OPENED).exists()

    listed = client.get(tickets_url(order), {"email": order.email})
    assert listed.status_code == 200
    [ticket] = listed.json()
    assert ticket["ticket_no"] == body["ticket_no"] and ticket["kind"] == "key_missing"
    assert ticket["replies"][0]["from"] == "buyer"
    assert ticket["replies"][0]["message"] == "No key <b>here</b>"  # stored as text


def test_unknown_kind_is_422_and_opens_nothing(client):
    order = delivered()
    response = client.post(
        tickets_url(order),
        {"email": order.email, "kind": "refund_me", "message": "x"},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid"
    assert not Ticket.objects.exists()


def test_a_wrong_email_is_a_404_like_a_lookup_and_counts_toward_its_limit(client):
    order = delivered()
    unknown = client.post(
        "/api/v1/orders/NOPE123/tickets",
        {"email": order.email, "kind": "other", "message": "x"},
        content_type="application/json",
    )
    wrong = client.post(
        tickets_url(order),
        {"email": "someone@else.test", "kind": "other", "message": "x"},
        content_type="application/json",
    )
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert client.get(tickets_url(order), {"email": "x@y.test"}).status_code == 404
    assert LOOKUP_FAILURES.check("127.0.0.1").count == 3
    for _ in range(LOOKUP_FAILURES.limit):
        client.get(tickets_url(order), {"email": "x@y.test"})
    limited = client.post(
        tickets_url(order),
        {"email": order.email, "kind": "other", "message": "right email, too late"},
        content_type="application/json",
    )
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert not Ticket.objects.exists()


def test_open_tickets_are_capped_per_order():
    order = delivered()
    for _ in range(OPEN_PER_ORDER):
        ticket_open(order=order, kind="other", message="hello", client_ip="198.51.100.1")
    from orders.support.tickets import TooManyTickets

    with pytest.raises(TooManyTickets):
        ticket_open(order=order, kind="other", message="again", client_ip="198.51.100.2")
    assert Ticket.objects.count() == OPEN_PER_ORDER


def test_the_order_page_form_opens_a_ticket_and_shows_the_reply_escaped(
    client, django_capture_on_commit_callbacks
):
    order = delivered()
    # Another browser proves the email in the form, like a lookup.
    response = client.post(
        reverse("order-ticket-create", args=[order.order_no]),
        {
            "kind": "key_invalid",
            "message": "<script>alert(1)</script> it fails",
            "email_or_password": order.email,
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("order-page", args=[order.order_no])).content.decode()
    ticket = Ticket.objects.get(order=order)
    assert ticket.ticket_no in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page

    owner = admin_login(role_user("owner"))
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(
            reverse("admin:orders_ticket_reply", args=[ticket.pk]),
            {"message": "Try activating it on the global store."},
        )
    ticket.refresh_from_db()
    assert ticket.status == "answered"
    page = client.get(reverse("order-page", args=[order.order_no])).content.decode()
    assert "Try activating it on the global store." in page
    reply_mail = [m for m in mail.outbox if ticket.ticket_no in m.subject]
    assert [m.to for m in reply_mail] == [[order.email]]
    assert (
        OutboxMessage.objects.filter(order=order, purpose=MessagePurpose.TICKET_REPLY).count() == 1
    )


def test_a_wrong_email_in_the_page_form_is_refused_like_a_lookup(client):
    order = delivered()
    response = client.post(
        reverse("order-ticket-create", args=[order.order_no]),
        {"kind": "other", "message": "hi", "email_or_password": "not@theirs.test"},
    )
    assert response.status_code == 404 and not Ticket.objects.exists()


def test_staff_replaces_a_key_from_the_ticket_without_seeing_either_key(
    client, django_capture_on_commit_callbacks
):
    order = delivered()
    add_keys(order.product, "NEW-KEY-0002")
    ticket = ticket_open(order=order, kind="key_invalid", message="dead", client_ip=None)
    old = CardKey.objects.get(order=order)
    staff = admin_login(role_user("staff"))
    page = staff.get(reverse("admin:orders_ticket_change", args=[ticket.pk])).content.decode()
    assert reverse("admin:orders_order_replace_key", args=[order.pk]) in page
    assert OLD_KEY not in page and "NEW-KEY-0002" not in page
    assert "refund-form" not in page  # staff do not refund

    with django_capture_on_commit_callbacks(execute=True):
        done = staff.post(
            reverse("admin:orders_order_replace_key", args=[order.pk]),
            {"key": old.pk, "ticket": ticket.pk, "reason": "buyer says dead"},
            follow=True,
        )
    html = done.content.decode()
    assert "replaced from the pool" in html and "NEW-KEY-0002" not in html
    old.refresh_from_db()
    assert old.status == CardKey.Status.VOID and old.order_id is None
    assert keys_for_order(order) == ["NEW-KEY-0002"]
    replacement = KeyReplacement.objects.get()
    assert replacement.old_key_id == old.pk and replacement.ticket == ticket
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.KEY_REPLACED).count() == 1
    [message] = [m for m in mail.outbox if "replacement key" in m.subject]
    assert message.to == [order.email] and "NEW-KEY-0002" in message.body
    # The buyer's order page shows the new key, not the old one.
    response = client.post(
        reverse("order-lookup"), {"order_no": order.order_no, "email_or_password": order.email}
    )
    assert response.status_code == 302
    page = client.get(reverse("order-page", args=[order.order_no])).content.decode()
    assert "NEW-KEY-0002" in page and OLD_KEY not in page


def test_a_replacement_row_per_old_key_is_a_database_rule():
    order = delivered()
    add_keys(order.product, "N-1", "N-2")
    old = CardKey.objects.get(order=order)
    spare = list(CardKey.objects.filter(status="available"))
    KeyReplacement.objects.create(order=order, slot=1, old_key=old, new_key=spare[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        KeyReplacement.objects.create(order=order, slot=1, old_key=old, new_key=spare[1])


def test_no_free_key_replaces_nothing_and_the_buyer_keeps_the_old_key():
    order = delivered()
    old = CardKey.objects.get(order=order)
    outcome = order_key_replace(order_id=order.pk, key_id=old.pk, actor=None)
    assert not outcome.done and "No free key" in outcome.message
    assert keys_for_order(order) == [OLD_KEY]
    assert not KeyReplacement.objects.exists()


def test_finance_refunds_from_the_order_page_staff_may_not(django_capture_on_commit_callbacks):
    order = delivered()
    url = reverse("admin:orders_order_refund", args=[order.pk])
    staff = admin_login(role_user("staff"))
    assert staff.post(url).status_code == 403
    finance = admin_login(role_user("finance"))
    page = finance.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert url in page
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(url, follow=True)
    assert "refund asked" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.REFUND_ASKED).exists()


def test_the_ticket_list_shows_open_first_and_masks_emails_for_staff():
    order = delivered()
    first = ticket_open(order=order, kind="other", message="a", client_ip=None)
    second = ticket_open(order=order, kind="key_missing", message="b", client_ip=None)
    Ticket.objects.filter(pk=first.pk).update(status="answered")
    staff = admin_login(role_user("staff"))
    html = staff.get(reverse("admin:orders_ticket_changelist")).content.decode()
    assert html.index(second.ticket_no) < html.index(first.ticket_no)
    assert order.email not in html
