"""The owner sets destinations up in the admin: validated, secrets never shown back, a test
message on demand with its real state beside it; nobody else sees them."""

from __future__ import annotations

import pytest

from orders.models import OwnerNotifier
from orders.outbox.dispatch import messages_dispatch
from shop.models import AuditEntry
from tests.admin.helpers import admin_login, role_user
from tests.http_receiver import http_receiver
from tests.notices.conftest import notifier, owner_messages

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
ADD = "/admin/orders/ownernotifier/add/"


def form(**fields):
    data = {
        "name": "Night shift",
        "kind": "telegram",
        "target": "-1001234567890",
        "secret": TOKEN,
        "events": ["new_order", "hold"],
        "batch_seconds": "60",
        "enabled": "on",
    }
    data.update(fields)
    return data


def test_the_owner_adds_a_telegram_destination_and_the_token_is_never_shown_again():
    client = admin_login(role_user("owner"))
    response = client.post(ADD, form())
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = OwnerNotifier.objects.get()
    assert (saved.kind, saved.secret, saved.events) == ("telegram", TOKEN, ["new_order", "hold"])
    page = client.get(f"/admin/orders/ownernotifier/{saved.pk}/change/").content.decode()
    assert TOKEN not in page and TOKEN.split(":")[1] not in page

    # Saved again without typing the token: it is kept.
    response = client.post(
        f"/admin/orders/ownernotifier/{saved.pk}/change/", form(secret="", name="Nights")
    )
    assert response.status_code == 302
    saved.refresh_from_db()
    assert (saved.name, saved.secret) == ("Nights", TOKEN)
    change = AuditEntry.objects.filter(object_type="orders.ownernotifier").first()
    assert change is not None and TOKEN not in str(change.changes)


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"secret": "not-a-token"}, "secret", "bot token"),
        ({"target": "my group"}, "target", "chat id"),
        ({"kind": "wecom", "target": "qyapi.weixin.qq.com/send"}, "target", "https://"),
        ({"kind": "webhook", "target": "https://example.com/h", "secret": "short"}, "secret", "32"),
        ({"kind": "email", "target": "not-an-address"}, "target", "email address"),
    ],
)
def test_a_destination_that_cannot_work_is_refused_with_a_reason(fields, field, words):
    client = admin_login(role_user("owner"))
    response = client.post(ADD, form(**fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and words in " ".join(errors[field])
    assert not OwnerNotifier.objects.exists()


def test_staff_and_finance_cannot_see_or_add_destinations():
    notifier("telegram", "-100123", secret=TOKEN)
    for role in ("staff", "finance"):
        client = admin_login(role_user(role))
        assert client.get("/admin/orders/ownernotifier/").status_code == 403
        assert client.post(ADD, form()).status_code == 403
        assert "ownernotifier" not in client.get("/admin/").content.decode()
    assert OwnerNotifier.objects.count() == 1


def test_a_test_message_is_sent_and_its_state_shown(settings):
    with http_receiver((200, b'{"ok":true,"result":{"message_id":7}}')) as tg:
        settings.KAMI_TELEGRAM_API = tg.url
        owner = notifier("telegram", "-1001234567890", secret=TOKEN)
        client = admin_login(role_user("owner"))
        listing = "/admin/orders/ownernotifier/"
        response = client.post(
            listing, {"action": "send_test", "_selected_action": [owner.pk]}, follow=True
        )
        assert "Test message queued" in response.content.decode()
        assert "Waiting to be sent" in client.get(listing).content.decode()
        messages_dispatch()
    (request,) = tg.requests
    assert b"a test message" in request.body
    assert owner_messages().get().status == "sent"
    assert "Sent at " in client.get(listing).content.decode()


def test_the_destination_page_lists_its_recent_batches_with_their_state(pay):
    from tests.factories import OrderFactory, stock_product

    owner = notifier("email", "owner@example.com", batch_seconds=0)
    pay(OrderFactory(product=stock_product(2, slug="p")))
    messages_dispatch()
    page = admin_login(role_user("owner")).get(f"/admin/orders/ownernotifier/{owner.pk}/change/")
    assert "1 event(s) — Sent at " in page.content.decode()
