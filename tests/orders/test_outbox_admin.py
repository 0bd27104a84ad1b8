"""The owner sees every message and attempt on the order, and can resend."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.test import Client
from django.urls import reverse

from orders.models import MessageAttempt, MessagePurpose, MessageStatus, OutboxMessage
from orders.outbox.channels import message_id
from orders.outbox.dispatch import messages_dispatch
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def delivered(client, django_capture_on_commit_callbacks, settings):
    settings.EMAIL_BACKEND = "tests.email_backends.DisconnectingEmailBackend"
    order = OrderFactory(product=stock_product(1, slug="p"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, completed_event(order)).status_code == 200
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    order.refresh_from_db()
    return order


def order_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def test_the_order_page_lists_its_messages_and_every_attempt(admin_client, delivered):
    page = admin_client.get(order_url(delivered)).content.decode()
    attempt = MessageAttempt.objects.get()
    assert "message attempts" in page.lower()
    assert "SMTPServerDisconnected" in page and attempt.worker in page
    listing = admin_client.get(reverse("admin:orders_outboxmessage_changelist"), {"state": "open"})
    assert delivered.order_no in listing.content.decode()
    detail = admin_client.get(
        reverse("admin:orders_outboxmessage_change", args=[OutboxMessage.objects.get().pk])
    )
    assert detail.status_code == 200 and "SMTPServerDisconnected" in detail.content.decode()


def test_the_owner_resends_as_a_new_copy_with_its_own_message_id(
    admin_client, delivered, django_capture_on_commit_callbacks
):
    first = OutboxMessage.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:orders_order_changelist"),
            {"action": "resend_keys", "_selected_action": [delivered.pk]},
        )
    assert response.status_code == 302
    resend = OutboxMessage.objects.get(generation=1)
    assert resend.purpose == MessagePurpose.DELIVERY and resend.status == MessageStatus.SENT
    assert resend.idempotency_key == f"delivery:{delivered.order_no}:email:resend-1"
    (email,) = mail.outbox
    assert email.message()["Message-ID"] == message_id(resend.idempotency_key)
    assert email.message()["Message-ID"] != message_id(first.idempotency_key)


def test_retry_now_makes_a_waiting_message_due(admin_client, delivered):
    message = OutboxMessage.objects.get()
    assert messages_dispatch() == 0  # waiting out its backoff
    admin_client.post(
        reverse("admin:orders_outboxmessage_changelist"),
        {"action": "retry_now", "_selected_action": [message.pk]},
    )
    assert messages_dispatch() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and len(mail.outbox) == 1


def test_resend_needs_the_owner_or_staff_role(delivered):
    user = User.objects.create_user("viewer", "v@example.com", "pw-12345678", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    client = Client()
    client.force_login(user)
    client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "resend_keys", "_selected_action": [delivered.pk]},
    )
    assert not OutboxMessage.objects.filter(generation=1).exists()
    user.groups.add(Group.objects.get_or_create(name="staff")[0])
    user = User.objects.get(pk=user.pk)
    client.force_login(user)
    client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "resend_keys", "_selected_action": [delivered.pk]},
    )
    assert OutboxMessage.objects.filter(generation=1).exists()
