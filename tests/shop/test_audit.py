"""The audit log (issue #9): every sensitive change leaves one row — who, when, which object,
each field before and after, never a secret — readable by the owner in the admin, and never
editable: not through the admin, not through the model, not through SQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import DatabaseError, connection, transaction
from django.forms.models import model_to_dict
from django.urls import reverse

from commissions.models import CommissionRule, CommissionSettings, Withdrawal
from commissions.services import withdrawals_approve, withdrawals_mark_paid, withdrawals_reject
from riskrules.models import RiskRule, RiskSettings
from shop.audit import SECRET, audit_record
from shop.models import AuditEntry, ShopSettings
from tests.admin.helpers import admin_login, role_user
from tests.commissions.factories import PromoterFactory
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def rows(object_type: str, **filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(object_type=object_type, **filters).order_by("pk"))


def form_data(obj, **changes) -> dict:
    """What the admin's change form posts for ``obj`` with ``changes`` typed in."""
    json_fields = {f.name for f in obj._meta.fields if f.get_internal_type() == "JSONField"}
    data = {}
    for name, value in (model_to_dict(obj) | changes).items():
        if value is None:
            value = ""
        elif name in json_fields:
            value = json.dumps(value)
        elif isinstance(value, list):
            value = [getattr(v, "pk", v) for v in value]
        if value is False:
            continue  # an unchecked box is absent from a form post
        data[name] = value
    data.pop("id", None)
    return data


@pytest.fixture
def owner_client():
    owner = role_user("owner")
    client = admin_login(owner)
    client.owner = owner
    return client


def test_shop_settings_change_in_the_admin_is_recorded_field_by_field(owner_client):
    settings_row = ShopSettings.load()
    url = reverse("admin:shop_shopsettings_change", args=[settings_row.pk])

    response = owner_client.post(url, form_data(settings_row, hold_minutes=30, shop_name="Kiosk"))

    assert response.status_code == 302, response.content.decode()[:3000]
    (entry,) = rows("shop.shopsettings", action=AuditEntry.Action.UPDATE)
    assert entry.action == AuditEntry.Action.UPDATE
    assert (entry.actor, entry.actor_name) == (owner_client.owner, "owner-user")
    assert entry.client_ip == "127.0.0.1"
    assert (entry.object_type, entry.object_id) == ("shop.shopsettings", "1")
    assert entry.changes == {"hold_minutes": [15, 30], "shop_name": ["Kami", "Kiosk"]}


def test_risk_settings_and_rules_are_recorded(owner_client):
    settings_row = RiskSettings.load()
    owner_client.post(
        reverse("admin:riskrules_risksettings_change", args=[1]),
        form_data(settings_row, checkout_rate_limit=5),
    )
    assert rows("riskrules.risksettings")[-1].changes == {"checkout_rate_limit": [20, 5]}

    rule = RiskRule.objects.create(name="Big orders", kind="quantity_cap", limit=5)
    assert rows("riskrules.riskrule", object_id=str(rule.pk))[0].action == "create"
    owner_client.post(
        reverse("admin:riskrules_riskrule_changelist"),
        {"action": "disable_rules", "_selected_action": [rule.pk], "index": 0},
    )
    switched = rows("riskrules.riskrule", object_id=str(rule.pk))[-1]
    assert (switched.action, switched.changes) == ("update", {"enabled": [True, False]})
    assert switched.actor == owner_client.owner

    owner_client.post(
        reverse("admin:riskrules_blocklistentry_add"),
        {"kind": "email", "value": "Bad@Example.com", "note": "chargebacks"},
    )
    created = rows("riskrules.blocklistentry")[-1]
    assert created.action == "create" and created.changes["value"] == [None, "bad@example.com"]


def test_commission_rates_are_recorded(owner_client):
    conf = CommissionSettings.load()
    owner_client.post(
        reverse("admin:commissions_commissionsettings_change", args=[1]),
        form_data(conf, level1_percent="12.50"),
    )
    assert rows("commissions.commissionsettings")[-1].changes == {
        "level1_percent": ["10.00", "12.50"]
    }

    product = ProductFactory()
    rule = CommissionRule.objects.create(level=1, product=product, percent=Decimal("20"))
    rule.percent = Decimal("25.00")
    rule.save()
    rule_pk = rule.pk
    rule.delete()
    create, change, delete = rows("commissions.commissionrule", object_id=str(rule_pk))
    assert create.changes["percent"] == [None, "20"]
    assert change.changes == {"percent": ["20.00", "25.00"]}
    assert delete.action == "delete" and delete.changes["percent"] == ["25.00", None]
    # No request: the system did it (a shell, a command, a task).
    assert {create.actor_name, change.actor_name, delete.actor_name} == {"system"}


def test_withdrawal_decisions_are_recorded_with_their_actor():
    finance = role_user("finance")
    promoter = PromoterFactory()

    def withdrawal() -> Withdrawal:
        return Withdrawal.objects.create(
            promoter=promoter,
            amount=2000,
            currency="USD",
            method="bank",
            account="DE00",
            account_key="bank:de00",
        )

    paid, rejected = withdrawal(), withdrawal()
    withdrawals_approve(withdrawal_ids=[paid.pk], actor=finance)
    withdrawals_mark_paid(withdrawal_ids=[paid.pk], reference="TX-9", actor=finance)
    withdrawals_reject(withdrawal_ids=[rejected.pk], reason="duplicate account", actor=finance)
    withdrawals_approve(withdrawal_ids=[rejected.pk], actor=finance)  # not allowed: no row

    approve, pay = rows("commissions.withdrawal", object_id=str(paid.pk))
    assert approve.changes == {"status": ["requested", "approved"]}
    assert pay.changes["status"] == ["approved", "paid"]
    assert pay.changes["reference"] == ["", "TX-9"]
    (reject,) = rows("commissions.withdrawal", object_id=str(rejected.pk))
    assert reject.changes["status"] == ["requested", "rejected"]
    assert reject.changes["reason"] == ["", "duplicate account"]
    assert {approve.actor, pay.actor, reject.actor} == {finance}


def test_withdrawal_decided_in_the_admin_is_recorded(owner_client):
    w = Withdrawal.objects.create(
        promoter=PromoterFactory(),
        amount=2000,
        currency="USD",
        method="bank",
        account="DE01",
        account_key="bank:de01",
    )
    owner_client.post(
        reverse("admin:commissions_withdrawal_changelist"),
        {"action": "approve", "_selected_action": [w.pk]},
    )
    (entry,) = rows("commissions.withdrawal")
    assert entry.actor == owner_client.owner and entry.changes["status"][1] == "approved"


def test_accounts_flags_and_passwords_are_recorded_without_the_hash(owner_client):
    user = User.objects.create_user("newstaff", "n@shop.test", "first-Pass-123")
    created = rows("auth.user", object_id=str(user.pk))[-1]
    assert created.action == "create"
    assert created.changes["username"] == [None, "newstaff"]
    assert created.changes["password"] == [None, SECRET]

    user.is_staff = True
    user.save()
    user.is_superuser = True
    user.is_active = False
    user.save()
    user.set_password("second-Pass-456")
    user.save()
    user.last_login = user.date_joined
    user.save(update_fields=["last_login"])  # every login does this: not worth a row

    staff_on, promoted, password = rows("auth.user", object_id=str(user.pk))[1:]
    assert staff_on.changes == {"is_staff": [False, True]}
    assert promoted.changes == {"is_active": [True, False], "is_superuser": [False, True]}
    assert password.changes == {"password": [SECRET, SECRET]}
    logged = json.dumps([e.changes for e in rows("auth.user")])
    assert user.password not in logged and "pbkdf2" not in logged and "md5$" not in logged

    pk = user.pk
    user.delete()
    deleted = rows("auth.user", object_id=str(pk))[-1]
    assert deleted.action == "delete" and deleted.object_repr == "newstaff"


def test_changes_made_in_the_admin_user_pages_name_their_actor(owner_client):
    target = User.objects.create_user("clerk", "c@shop.test", "clerk-Pass-123")
    url = reverse("admin:auth_user_change", args=[target.pk])
    data = form_data(target, is_staff=True, groups=[Group.objects.get(name="staff").pk])
    data.update({"date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"})
    data.pop("password", None)
    data.pop("date_joined", None)
    data.pop("last_login", None)

    response = owner_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    recorded = {
        name: entry.changes[name]
        for entry in rows("auth.user", object_id=str(target.pk), actor=owner_client.owner)
        for name in entry.changes
    }
    assert recorded["is_staff"] == [False, True]
    assert recorded["groups"] == [[], ["staff"]]


def test_group_membership_is_recorded_from_either_side():
    alice = User.objects.create_user("alice", password="alice-Pass-1")
    bob = User.objects.create_user("bob", password="bob-Pass-1")
    staff, finance = Group.objects.get(name="staff"), Group.objects.get(name="finance")

    alice.groups.add(staff)
    alice.groups.add(finance)
    finance.user_set.add(bob)  # the reverse side
    alice.groups.remove(staff)
    alice.groups.clear()
    finance.user_set.clear()  # bob leaves

    alice_rows = [e.changes["groups"] for e in rows("auth.user", object_id=str(alice.pk))[1:]]
    assert alice_rows == [
        [[], ["staff"]],
        [["staff"], ["finance", "staff"]],
        [["finance", "staff"], ["finance"]],
        [["finance"], []],
    ]
    bob_rows = [e.changes["groups"] for e in rows("auth.user", object_id=str(bob.pk))[1:]]
    assert bob_rows == [[[], ["finance"]], [["finance"], []]]


def test_a_role_permission_change_is_recorded():
    staff = Group.objects.get(name="staff")
    staff.permissions.add(Permission.objects.get(codename="view_cardkey"))
    (entry,) = rows("auth.group", object_id=str(staff.pk))[-1:]
    before, after = entry.changes["permissions"]
    assert set(after) - set(before) == {"cardpool.view_cardkey"}


def test_the_audit_log_is_read_only_in_the_admin_and_for_the_owner_alone(owner_client):
    entry = audit_record(action="update", object_type="x.y", object_id="1", object_repr="thing")
    changelist = reverse("admin:shop_auditentry_changelist")
    change = reverse("admin:shop_auditentry_change", args=[entry.pk])

    assert owner_client.get(changelist).status_code == 200
    page = owner_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert owner_client.get(reverse("admin:shop_auditentry_add")).status_code == 403
    delete = reverse("admin:shop_auditentry_delete", args=[entry.pk])
    assert owner_client.get(delete).status_code == 403
    owner_client.post(change, {"object_repr": "rewritten"})
    owner_client.post(changelist, {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert AuditEntry.objects.get(pk=entry.pk).object_repr == "thing"

    for role in ("staff", "finance"):
        client = admin_login(role_user(role))
        assert client.get(changelist).status_code == 403
        assert client.get(change).status_code == 403


def test_the_database_refuses_to_update_or_delete_audit_rows():
    entry = audit_record(action="update", object_type="x.y", object_id="1", object_repr="thing")
    for sql in (
        "UPDATE shop_auditentry SET object_repr = 'forged' WHERE id = %s",
        "DELETE FROM shop_auditentry WHERE id = %s",
        "UPDATE shop_auditentry SET actor_id = NULL WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    with transaction.atomic(), pytest.raises(DatabaseError, match="append-only"):
        AuditEntry.objects.filter(pk=entry.pk).update(note="forged")
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).object_repr == "thing"


def test_deleting_a_user_who_acted_leaves_their_rows_alone():
    clerk = User.objects.create_user("clerk2", password="clerk-Pass-2")
    audit_record(action="update", object_type="x.y", object_id="1", actor=clerk)
    clerk.delete()  # no cascade into the log, no UPDATE the trigger would refuse
    assert AuditEntry.objects.filter(actor_name="clerk2").count() == 1
