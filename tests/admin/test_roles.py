"""The three roles (issue #9): the groups ``roles_ensure`` keeps, and what each role can and
cannot reach in the admin — pages, the key reveal, the resend, withdrawal decisions — plus
the key-pool search that answered "is this key ours?" for anyone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from cardpool.crypto import fingerprint
from cardpool.models import CardKey
from commissions.models import Withdrawal
from core.role_groups import FINANCE_PERMISSIONS, STAFF_PERMISSIONS, roles_ensure
from orders.events import OrderEventKind
from orders.models import OrderEvent
from tests.admin.helpers import admin_login, perms_user, role_user
from tests.admin.test_admin import delivered_order
from tests.commissions.factories import PromoterFactory
from tests.factories import OrderFactory, ProductFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

KEY = "ROLE-MATRIX-KEY-1"
OWNER, STAFF, FINANCE = "owner", "staff", "finance"
ROLES = ["owner", "owner-group", "staff", "finance"]


def _labels(group: Group) -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_the_role_groups_hold_exactly_their_permissions_and_ensuring_twice_changes_nothing():
    staff, finance, owner = (Group.objects.get(name=n) for n in ("staff", "finance", "owner"))
    assert _labels(staff) == set(STAFF_PERMISSIONS)
    assert _labels(finance) == set(FINANCE_PERMISSIONS)
    assert "orders.view_keyreveal" in _labels(owner) and "shop.view_auditentry" in _labels(owner)

    report = roles_ensure()
    assert report.created == () and report.changed == () and report.missing == ()

    # A permission added by hand to a role is taken back: roles are what the code says.
    staff.permissions.add(*owner.permissions.filter(codename="view_cardkey"))
    assert roles_ensure().changed == ("staff",)
    assert _labels(staff) == set(STAFF_PERMISSIONS)


def test_ensure_roles_command_recreates_a_deleted_group(capsys):
    Group.objects.filter(name="finance").delete()
    call_command("ensure_roles")
    assert "Created: finance" in capsys.readouterr().out
    assert _labels(Group.objects.get(name="finance")) == set(FINANCE_PERMISSIONS)


@pytest.fixture
def world():
    product = ProductFactory()
    order = delivered_order(product, KEY)
    withdrawal = Withdrawal.objects.create(
        promoter=PromoterFactory(),
        amount=1500,
        currency="USD",
        method="paypal",
        account="p@example.net",
        account_key="paypal:p@example.net",
    )
    return {"product": product, "order": order, "withdrawal": withdrawal}


# (url name, args from the world, the roles that may open it). "owner" stands for both
# kinds of owner; everyone else gets 403.
PAGES = [
    ("admin:orders_order_changelist", None, {OWNER, STAFF, FINANCE}),
    ("admin:orders_order_change", "order", {OWNER, STAFF, FINANCE}),
    ("admin:orders_order_reveal_keys", "order", {OWNER}),
    ("admin:orders_paymentevent_changelist", None, {OWNER}),
    ("admin:orders_keyreveal_changelist", None, {OWNER}),
    ("admin:shop_product_changelist", None, {OWNER, STAFF}),
    ("admin:shop_product_import_keys", "product", {OWNER}),
    ("admin:cardpool_importbatch_changelist", None, {OWNER, STAFF}),
    ("admin:cardpool_cardkey_changelist", None, {OWNER}),
    ("admin:riskrules_revieworder_changelist", None, {OWNER, FINANCE}),
    ("admin:riskrules_riskrule_changelist", None, {OWNER}),
    ("admin:riskrules_risksettings_changelist", None, {OWNER}),
    ("admin:riskrules_blocklistentry_changelist", None, {OWNER}),
    ("admin:commissions_withdrawal_changelist", None, {OWNER, FINANCE}),
    ("admin:commissions_withdrawal_change", "withdrawal", {OWNER, FINANCE}),
    ("admin:commissions_commissionsettings_changelist", None, {OWNER}),
    ("admin:commissions_commissionrule_changelist", None, {OWNER}),
    ("admin:shop_shopsettings_changelist", None, {OWNER}),
    ("admin:shop_auditentry_changelist", None, {OWNER}),
    ("admin:auth_user_changelist", None, {OWNER}),
    ("admin:auth_group_changelist", None, {OWNER}),
]


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix_of_admin_pages(world, role):
    client = admin_login(role_user(role))
    kind = OWNER if role.startswith("owner") else role
    wrong = []
    for name, arg, allowed in PAGES:
        url = reverse(name, args=[world[arg].pk] if arg else [])
        status = client.get(url).status_code
        expected = {200, 302} if kind in allowed else {403}
        if status not in expected:
            wrong.append(f"{name}: {status}, expected {sorted(expected)}")
    assert wrong == []


@pytest.mark.parametrize(("role", "may"), [("owner", True), ("staff", False), ("finance", True)])
def test_only_owner_and_finance_decide_withdrawals(world, role, may):
    client = admin_login(role_user(role))
    withdrawal = world["withdrawal"]
    response = client.post(
        reverse("admin:commissions_withdrawal_changelist"),
        {"action": "approve", "_selected_action": [withdrawal.pk]},
    )
    withdrawal.refresh_from_db()
    assert (withdrawal.status == Withdrawal.Status.APPROVED) is may
    if not may:
        assert response.status_code == 403


def test_a_view_only_login_cannot_decide_withdrawals_or_approve_promoters(world):
    """Actions declared without a permission were offered to anyone who could see the list."""
    client = admin_login(perms_user("commissions.view_withdrawal", "commissions.view_promoter"))
    withdrawal = world["withdrawal"]
    pending = PromoterFactory(status="pending")
    changelist = reverse("admin:commissions_withdrawal_changelist")
    html = client.get(changelist).content.decode()
    assert 'value="approve"' not in html and 'value="export_csv"' in html
    client.post(changelist, {"action": "approve", "_selected_action": [withdrawal.pk]})
    client.post(
        reverse("admin:commissions_promoter_changelist"),
        {"action": "approve", "_selected_action": [pending.pk]},
    )
    withdrawal.refresh_from_db()
    pending.refresh_from_db()
    assert (withdrawal.status, pending.status) == ("requested", "pending")


# --- Resend: staff sends the buyer their keys without reading them ---------------------------


def resend_url(order) -> str:
    return reverse("admin:orders_order_resend_keys", args=[order.pk])


def test_staff_resends_the_keys_to_the_buyer_without_seeing_them(
    world, django_capture_on_commit_callbacks
):
    order = world["order"]
    staff = role_user("staff")
    client = admin_login(staff)
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert resend_url(order) in page and KEY not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url(order), follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert "delivery message queued to the buyer" in html and KEY not in html
    assert [m.to for m in mail.outbox] == [[order.email]]
    assert KEY in mail.outbox[0].body
    note = OrderEvent.objects.get(order=order, kind=OrderEventKind.KEYS_RESENT)
    assert note.actor == staff

    # Pressed again at once: refused, so a support login is no mail bomb.
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(resend_url(order), follow=True)
    assert "not sent again" in again.content.decode()
    assert len(mail.outbox) == 1


def test_the_resend_action_on_the_order_list(world, django_capture_on_commit_callbacks):
    order = world["order"]
    pending = OrderFactory(product=world["product"])
    client = admin_login(role_user("staff"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:orders_order_changelist"),
            {"action": "resend_keys", "_selected_action": [order.pk, pending.pk]},
            follow=True,
        )
    html = response.content.decode()
    assert "Queued 1 delivery email." in html and "not delivered" in html
    assert [m.to for m in mail.outbox] == [[order.email]]


@pytest.mark.parametrize("who", ["finance", "view_order only"])
def test_resend_is_refused_without_its_permission(world, who, django_capture_on_commit_callbacks):
    order = world["order"]
    user = perms_user("orders.view_order") if who == "view_order only" else role_user(who)
    client = admin_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(resend_url(order)).status_code == 403
        client.post(
            reverse("admin:orders_order_changelist"),
            {"action": "resend_keys", "_selected_action": [order.pk]},
        )
    assert mail.outbox == []
    assert not OrderEvent.objects.filter(kind=OrderEventKind.KEYS_RESENT).exists()
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert resend_url(order) not in page


def test_resend_answers_get_with_405_and_changes_nothing(world):
    client = admin_login(role_user("staff"))
    assert client.get(resend_url(world["order"])).status_code == 405
    assert not OrderEvent.objects.filter(kind=OrderEventKind.KEYS_RESENT).exists()


# --- The key-pool search ---------------------------------------------------------------------


def test_a_non_owner_cannot_test_whether_a_key_is_in_the_pool():
    """Issue #9: the card-key search fingerprinted whatever was typed, so anyone who could see
    the list could confirm that a candidate key was in the pool (and which order got it)."""
    product = stock_product(3)
    known, unknown = f"{product.slug}-KEY-1", f"{product.slug}-KEY-999"
    changelist = reverse("admin:cardpool_cardkey_changelist")
    client = admin_login(perms_user("cardpool.view_cardkey", "cardpool.change_cardkey"))

    found = client.get(changelist, {"q": known})
    not_found = client.get(changelist, {"q": unknown})

    assert found.status_code == 200
    assert list(found.context["cl"].result_list) == list(not_found.context["cl"].result_list)
    assert list(found.context["cl"].result_list) == []
    # The owner keeps the search: "is this key, reported by a buyer, ours?"
    owner = admin_login(role_user("owner"))
    hits = owner.get(changelist, {"q": known}).context["cl"].result_list
    assert [k.pk for k in hits] == [CardKey.objects.get(fingerprint=fingerprint(known)).pk]


def test_the_order_search_of_a_non_owner_matches_whole_order_numbers_only(world):
    order = world["order"]
    client = admin_login(role_user("staff"))
    changelist = reverse("admin:orders_order_changelist")
    assert list(client.get(changelist, {"q": order.order_no[:6]}).context["cl"].result_list) == []
    exact = client.get(changelist, {"q": order.order_no.lower()}).context["cl"].result_list
    assert [o.pk for o in exact] == [order.pk]
