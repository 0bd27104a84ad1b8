"""Keys in the admin only through the owner's explicit, recorded reveal (issue #9).

The order page never shows a key. "Reveal keys" asks the owner for a reason; the POST records
who, when, which order, why and from which IP (``KeyReveal``, plus an audit-log row) and shows
the keys on that response only, marked no-store. Everyone else is refused, and the records
cannot be edited, not even with SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from orders.models import KeyReveal
from shop.models import AuditEntry
from tests.admin.helpers import admin_login, perms_user, role_user
from tests.admin.test_admin import delivered_order
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

KEY = "REVEAL-ME-KEY-0042"


@pytest.fixture
def order():
    return delivered_order(ProductFactory(), KEY)


def reveal_url(order) -> str:
    return reverse("admin:orders_order_reveal_keys", args=[order.pk])


def test_the_owner_reveals_with_a_reason_and_it_is_recorded(order):
    owner = role_user("owner")
    client = admin_login(owner)

    form = client.get(reveal_url(order))
    assert form.status_code == 200
    assert KEY not in form.content.decode()
    assert 'name="reason"' in form.content.decode()

    response = client.post(reveal_url(order), {"reason": "Buyer says key 1 does not work"})

    assert response.status_code == 200
    assert KEY in response.content.decode()
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control
    reveal = KeyReveal.objects.get()
    assert (reveal.order, reveal.actor, reveal.actor_name) == (order, owner, owner.username)
    assert reveal.reason == "Buyer says key 1 does not work"
    assert reveal.client_ip == "127.0.0.1"
    assert reveal.key_count == 1 and reveal.created_at is not None
    audit = AuditEntry.objects.get(action=AuditEntry.Action.REVEAL)
    assert (audit.actor, audit.object_type) == (owner, "orders.order")
    assert audit.object_id == str(order.pk)
    assert audit.note == "Buyer says key 1 does not work"
    assert KEY not in str(audit.changes)  # the log says that keys were shown, never which
    # ...and the order page itself still shows none.
    page = client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert KEY not in page.content.decode()


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_a_reveal_without_a_proper_reason_shows_nothing_and_records_nothing(order, reason):
    client = admin_login(role_user("owner"))
    response = client.post(reveal_url(order), {"reason": reason})
    assert response.status_code == 200
    assert KEY not in response.content.decode()
    assert "errorlist" in response.content.decode()
    assert not KeyReveal.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.REVEAL).exists()


@pytest.mark.parametrize("who", ["staff", "finance", "view_order only"])
def test_no_one_but_the_owner_may_reveal(order, who):
    user = perms_user("orders.view_order") if who == "view_order only" else role_user(who)
    client = admin_login(user)
    assert client.get(reveal_url(order)).status_code == 403
    response = client.post(reveal_url(order), {"reason": "curious"})
    assert response.status_code == 403
    assert KEY not in response.content.decode()
    assert not KeyReveal.objects.exists()
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert reveal_url(order) not in page  # no button that only leads to a 403


def test_reveals_are_listed_read_only_for_the_owner_alone(order):
    owner_client = admin_login(role_user("owner"))
    owner_client.post(reveal_url(order), {"reason": "chargeback evidence"})
    reveal = KeyReveal.objects.get()
    changelist = reverse("admin:orders_keyreveal_changelist")
    change = reverse("admin:orders_keyreveal_change", args=[reveal.pk])

    listing = owner_client.get(changelist)
    assert listing.status_code == 200
    assert "chargeback evidence" in listing.content.decode()
    assert owner_client.get(change).status_code == 200
    assert 'name="_save"' not in owner_client.get(change).content.decode()
    assert owner_client.get(reverse("admin:orders_keyreveal_add")).status_code == 403
    delete = reverse("admin:orders_keyreveal_delete", args=[reveal.pk])
    assert owner_client.get(delete).status_code == 403
    owner_client.post(change, {"reason": "rewritten"})
    assert KeyReveal.objects.get().reason == "chargeback evidence"

    staff_client = admin_login(role_user("staff"))
    assert staff_client.get(changelist).status_code == 403
    assert staff_client.get(change).status_code == 403


def test_the_database_refuses_to_change_or_delete_a_reveal(order):
    client = admin_login(role_user("owner"))
    client.post(reveal_url(order), {"reason": "support ticket 17"})
    reveal = KeyReveal.objects.get()

    for sql in (
        "UPDATE orders_keyreveal SET reason = 'nothing to see' WHERE id = %s",
        "DELETE FROM orders_keyreveal WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [reveal.pk])
    with pytest.raises(ValueError):
        reveal.save()
    with pytest.raises(ValueError):
        reveal.delete()
    assert KeyReveal.objects.get().reason == "support ticket 17"


def test_deleting_the_owner_account_keeps_the_record(order):
    owner = role_user("owner")
    admin_login(owner).post(reveal_url(order), {"reason": "before leaving"})
    owner.delete()
    reveal = KeyReveal.objects.get()
    assert reveal.actor_name == "owner-user" and reveal.reason == "before leaving"
