"""The owner's admin: rules edited without code and applied to the next order, the review
queue's actions (each recorded with who did it), the blocklist and alerts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from cardpool.models import CardKey
from core.errors import Blocked
from orders.models import Order, OrderStatus
from riskrules.models import Alert, BlocklistEntry, ReviewAction, RiskRule, RuleAction
from riskrules.services import rules_seed_defaults
from tests.factories import stock_product
from tests.riskrules.conftest import checkout, only_rules, pay, rule

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

REVIEW_URL = reverse("admin:riskrules_revieworder_changelist")


def rule_form(r: RiskRule, **changes) -> dict:
    data = {k: ("" if v is None else v) for k, v in model_to_dict(r).items()}
    data.pop("id", None)
    data = data | changes
    return {k: v for k, v in data.items() if not (k == "enabled" and v is False)}


@pytest.mark.django_db(transaction=True)
def test_owner_changes_a_rule_in_the_admin_and_the_next_order_obeys(admin_client):
    rules_seed_defaults()
    stock_product(20, slug="p")
    velocity = rule("Same IP")
    url = reverse("admin:riskrules_riskrule_change", args=[velocity.pk])
    assert admin_client.get(url).status_code == 200
    checkout(email="a@example.com")  # 1 of the default 3

    response = admin_client.post(url, rule_form(velocity, limit=1))
    assert response.status_code == 302, response.content
    with pytest.raises(Blocked) as refused:
        checkout(email="b@example.com")
    assert "at most 1 order per 10 minutes" in refused.value.message

    changelist = reverse("admin:riskrules_riskrule_changelist")
    admin_client.post(
        changelist, {"action": "disable_rules", "_selected_action": [velocity.pk], "index": 0}
    )
    assert checkout(email="c@example.com").status == OrderStatus.PENDING


def test_rule_form_requires_the_fields_of_its_kind(admin_client):
    response = admin_client.post(
        reverse("admin:riskrules_riskrule_add"),
        {"name": "broken", "kind": "velocity", "action": "block", "position": 1, "measure": ""},
    )
    assert response.status_code == 200
    assert not RiskRule.objects.filter(name="broken").exists()
    assert b"Required for this kind of rule." in response.content


def test_rules_changelist_describes_each_rule(admin_client):
    body = admin_client.get(reverse("admin:riskrules_riskrule_changelist")).content.decode()
    assert "&gt; 3 orders / 10 min per client IP + product" in body
    assert "&gt; 3.00 × 7-day average" in body


def test_blocklist_entry_added_in_the_admin_is_normalised_and_signed(admin_client):
    response = admin_client.post(
        reverse("admin:riskrules_blocklistentry_add"),
        {"kind": "network", "value": " 203.0.113.9/24 ", "note": "card testing"},
    )
    assert response.status_code == 302
    entry = BlocklistEntry.objects.get()
    assert entry.value == "203.0.113.0/24" and entry.created_by.username == "admin"


# --- Review queue ---------------------------------------------------------------------------


@pytest.fixture
def held(django_capture_on_commit_callbacks):
    """Two paid orders on hold (a hold rule on quantity), and one delivered order."""
    product = stock_product(10, slug="p")
    cap = RiskRule.objects.create(
        name="Big orders wait", kind="quantity_cap", action=RuleAction.HOLD, limit=1
    )
    only_rules(cap)
    first = checkout(quantity=2, email="one@example.com", ip="203.0.113.1")
    second = checkout(quantity=2, email="two@example.com", ip="203.0.113.2")
    normal = checkout(quantity=1, email="three@example.com", ip="203.0.113.3")
    with django_capture_on_commit_callbacks(execute=True):
        for order in (first, second, normal):
            pay(order)
    for order in (first, second, normal):
        order.refresh_from_db()
    assert [first.status, second.status] == [OrderStatus.ON_HOLD] * 2
    assert normal.status == OrderStatus.DELIVERED
    return product, first, second


def act(client, action: str, orders, **extra):
    return client.post(
        REVIEW_URL,
        {"action": action, "_selected_action": [o.pk for o in orders], "index": 0} | extra,
    )


def test_queue_lists_orders_on_hold_newest_first_with_reasons(admin_client, held):
    _, first, second = held
    response = admin_client.get(REVIEW_URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index(second.order_no) < body.index(first.order_no)  # newest first
    assert "Big orders wait: 2 keys in one order (cap 1)" in body
    assert "three@example.com" not in body


def test_approve_delivers_in_bulk_and_records_who(admin_client, held):
    product, first, second = held
    response = act(admin_client, "approve", [first, second])
    assert response.status_code == 302
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == OrderStatus.DELIVERED
        assert CardKey.objects.filter(order=order, status="sold").count() == 2
        assert order.events.get(kind="delivered").actor.username == "admin"
    actions = ReviewAction.objects.all()
    assert {(a.action, a.actor.username, a.result) for a in actions} == {
        ("approve", "admin", "delivered")
    }
    assert actions.count() == 2
    assert admin_client.get(REVIEW_URL).content.decode().count("one@example.com") == 0


def test_reject_and_refund_asks_first_then_refunds_through_the_provider(
    admin_client, held, django_capture_on_commit_callbacks
):
    _, first, second = held
    confirm = act(admin_client, "reject_and_refund", [first])
    assert confirm.status_code == 200 and first.order_no in confirm.content.decode()
    first.refresh_from_db()
    assert first.status == OrderStatus.ON_HOLD  # nothing happens before the owner confirms

    with django_capture_on_commit_callbacks(execute=True):
        done = act(admin_client, "reject_and_refund", [first], confirm="yes")
    assert done.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OrderStatus.REFUNDED and first.refunded_amount == first.amount
    assert second.status == OrderStatus.ON_HOLD
    assert not CardKey.objects.filter(order=first, status="sold").exists()
    record = ReviewAction.objects.get()
    assert record.action == "reject_refund" and record.actor.username == "admin"
    assert first.events.get(kind="refund_requested").actor.username == "admin"


def test_blocklist_buyer_from_the_queue(admin_client, held):
    _, first, second = held
    act(admin_client, "blocklist_email", [first])
    act(admin_client, "blocklist_ip", [second])
    assert set(BlocklistEntry.objects.values_list("kind", "value")) == {
        ("email", "one@example.com"),
        ("network", "203.0.113.2/32"),
    }
    assert all(e.created_by.username == "admin" for e in BlocklistEntry.objects.all())
    assert set(ReviewAction.objects.values_list("action", flat=True)) == {
        "block_email",
        "block_ip",
    }
    assert first.events.filter(kind="review_block_email").get().actor.username == "admin"


def test_staff_without_the_review_permission_cannot_act(held):
    _, first, _ = held
    user = User.objects.create_user("support", "s@example.com", "pw-support-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_revieworder"))
    client = Client()
    client.force_login(user)
    assert client.get(REVIEW_URL).status_code == 200
    act(client, "approve", [first])
    first.refresh_from_db()
    assert first.status == OrderStatus.ON_HOLD and not ReviewAction.objects.exists()


def test_alerts_are_acknowledged_from_the_admin(admin_client):
    alert = Alert.objects.create(kind="low_stock", subject="product:1", title="Low stock")
    changelist = reverse("admin:riskrules_alert_changelist")
    assert "Low stock" in admin_client.get(changelist + "?state=open").content.decode()
    admin_client.post(
        changelist, {"action": "acknowledge", "_selected_action": [alert.pk], "index": 0}
    )
    alert.refresh_from_db()
    assert alert.acknowledged_at and alert.acknowledged_by.username == "admin"


def test_decisions_and_settings_pages_load(admin_client, held):
    for name in ("riskdecision", "reviewaction", "blocklistentry", "alert"):
        assert admin_client.get(reverse(f"admin:riskrules_{name}_changelist")).status_code == 200
    # The settings singleton's list jumps to its one row.
    settings_url = reverse("admin:riskrules_risksettings_changelist")
    settings_page = admin_client.get(settings_url, follow=True)
    assert settings_page.status_code == 200
    assert settings_page.redirect_chain[-1][0].endswith("/risksettings/1/change/")
    assert Order.objects.count() == 3
