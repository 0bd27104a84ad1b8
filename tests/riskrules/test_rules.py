"""Each kind of rule, each action, evaluation order and scope — through the real checkout.

Blocks are tested in ``transaction=True`` tests: a refused checkout rolls back, and its audit
record is written on a connection of its own, which must really commit (and be cleaned up).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import Blocked
from orders.models import OrderStatus
from riskrules.models import BlocklistEntry, RiskDecision, RiskRule, RuleAction
from riskrules.services import blocklist_add
from tests.factories import OrderFactory, stock_product
from tests.riskrules.conftest import IP, checkout, only_rules, pay, rule

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
transactional = pytest.mark.django_db(transaction=True)


@pytest.fixture
def product():
    return stock_product(50, slug="p", price=1000, max_per_order=20)


def velocity(key: str, *, limit: int = 2, measure: str = "orders", action: str = "block"):
    r = RiskRule.objects.create(
        name=f"velocity {key} {measure}",
        kind=RiskRule.Kind.VELOCITY,
        action=action,
        key=key,
        measure=measure,
        limit=limit,
        window_minutes=10,
        position=1,
    )
    only_rules(r)
    return r


# --- Velocity -----------------------------------------------------------------------------


@transactional
def test_default_same_ip_and_product_blocks_the_fourth_order_in_ten_minutes(
    product, roomy_unpaid_limits
):
    for i in range(3):
        checkout(email=f"b{i}@example.com")
    with pytest.raises(Blocked) as refused:
        checkout(email="b4@example.com")
    assert refused.value.status == 403 and refused.value.code == "blocked"
    message = refused.value.message
    assert "at most 3 orders per 10 minutes" in message
    assert "Same IP" not in message and "ip_product" not in message  # no rule internals
    # Another product, or another network, is not affected.
    stock_product(5, slug="other")
    checkout("other", email="b5@example.com")
    checkout(email="b6@example.com", ip="198.51.100.8")
    decision = RiskDecision.objects.get()
    assert decision.outcome == RuleAction.BLOCK and decision.order is None
    assert decision.rule == rule("Same IP") and decision.client_ip == IP
    assert decision.inputs | {} == {
        "key": "ip_product",
        "measure": "orders",
        "window_minutes": 10,
        "limit": 3,
        "seen": 3,
        "would_be": 4,
    }


SAME_KEY = {
    # key: (kwargs for the i-th order sharing the key, kwargs for an order that does not)
    "ip": (lambda i: {"email": f"e{i}@example.com"}, {"ip": "203.0.113.99"}),
    "email": (lambda i: {"ip": f"203.0.113.{i + 10}"}, {"email": "else@example.com"}),
    "ip_product": (lambda i: {"email": f"e{i}@example.com"}, {"product": "q"}),
    "email_product": (lambda i: {"ip": f"203.0.113.{i + 10}"}, {"product": "q"}),
}


@transactional
@pytest.mark.parametrize("key", list(SAME_KEY))
def test_velocity_by_each_key(product, roomy_unpaid_limits, key):
    stock_product(20, slug="q")
    velocity(key, limit=2)
    same, other = SAME_KEY[key]
    checkout(**same(0))
    checkout(**same(1))
    with pytest.raises(Blocked):
        checkout(**same(2))
    checkout(**(same(3) | other))  # counted apart: a different IP, email or product


@transactional
def test_email_velocity_folds_tags_and_gmail_dots(product, roomy_unpaid_limits):
    velocity(RiskRule.Key.EMAIL, limit=2)
    checkout(email="bot+1@gmail.com", ip="198.51.100.1")
    checkout(email="b.o.t+2@googlemail.com", ip="198.51.100.2")
    with pytest.raises(Blocked):
        checkout(email="BOT+3@gmail.com", ip="198.51.100.3")


@transactional
def test_velocity_in_units(product, roomy_unpaid_limits):
    velocity("email", limit=5, measure="units")
    checkout(quantity=3)
    with pytest.raises(Blocked) as refused:
        checkout(quantity=3)  # 6 > 5
    assert "at most 5 keys per 10 minutes" in refused.value.message
    checkout(quantity=2)  # exactly 5


def test_velocity_window_forgets_old_orders(product, roomy_unpaid_limits):
    velocity("ip", limit=1)
    old = OrderFactory(product=product, client_ip=IP)
    type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert checkout().status == OrderStatus.PENDING


# --- Amount anomaly -----------------------------------------------------------------------


def paid_history(product, n: int, quantity: int = 1) -> None:
    now = timezone.now()
    for _ in range(n):
        OrderFactory(
            product=product,
            quantity=quantity,
            status=OrderStatus.DELIVERED,
            paid_at=now - timedelta(days=1),
            delivered_at=now - timedelta(days=1),
            client_ip="203.0.113.1",
        )


def test_amount_over_three_times_the_average_is_held_at_payment(
    product, django_capture_on_commit_callbacks
):
    paid_history(product, 5)  # average 10.00
    only_rules(rule("Amount over"))
    normal = checkout(quantity=3)  # 30.00 = 3 × average: not over
    big = checkout(quantity=4, email="big@example.com", ip="203.0.113.2")  # 40.00 > 30.00
    assert RiskDecision.objects.filter(order=normal).count() == 0
    decision = RiskDecision.objects.get(order=big)
    assert decision.outcome == RuleAction.HOLD
    assert decision.inputs["average"] == 1000 and decision.inputs["threshold"] == 3000
    with django_capture_on_commit_callbacks(execute=True):
        pay(big)
        pay(normal)
    big.refresh_from_db()
    normal.refresh_from_db()
    assert big.status == OrderStatus.ON_HOLD and normal.status == OrderStatus.DELIVERED
    hold_event = big.events.get(kind="risk_hold")
    assert "3" in hold_event.message and "average" in hold_event.message


def test_amount_anomaly_has_a_floor_for_new_products(product):
    only_rules(rule("Amount over"))
    paid_history(product, 4)  # fewer than the 5 orders an average needs
    order = checkout(quantity=20)
    assert not RiskDecision.objects.filter(order=order).exists()
    r = rule("Amount over")
    r.min_baseline_orders = 1
    r.floor_amount = 50_000  # and never below 500.00
    r.save()
    order = checkout(quantity=20, email="two@example.com", ip="203.0.113.3")  # 200.00
    assert not RiskDecision.objects.filter(order=order).exists()


def test_amount_multiplier_is_configurable(product):
    paid_history(product, 5)
    r = rule("Amount over")
    r.multiplier = Decimal("1.5")
    r.action = RuleAction.FLAG
    r.save()
    only_rules(r)
    order = checkout(quantity=2)
    assert RiskDecision.objects.get(order=order).outcome == RuleAction.FLAG


# --- Quantity cap, blocklists, disposable domains -----------------------------------------


@transactional
def test_global_quantity_cap(product):
    cap = rule("quantity cap")
    cap.limit = 5
    cap.save()
    only_rules(cap)
    with pytest.raises(Blocked) as refused:
        checkout(quantity=6)
    assert refused.value.message == "At most 5 keys per order."
    assert checkout(quantity=5).quantity == 5


@transactional
@pytest.mark.parametrize(
    ("kind", "value", "email", "ip", "message"),
    [
        ("email", "Bad@Example.com", "bad@example.com", IP, "email address"),
        # +tags and Gmail's dots do not make another buyer.
        ("email", "bad.guy@gmail.com", "Bad.Guy+x@googlemail.com", IP, "email address"),
        ("email", "bad@example.com", "bad+again@example.com", IP, "email address"),
        ("domain", "evil.test", "x@mail.evil.test", IP, "email domain"),
        ("network", "203.0.113.0/24", "ok@example.com", "203.0.113.77", "network"),
        ("network", "2001:db8::1", "ok@example.com", "2001:db8::1", "network"),
    ],
)
def test_blocklists_refuse(product, kind, value, email, ip, message):
    blocklist_add(kind=kind, value=value, note="chargebacks")
    with pytest.raises(Blocked) as refused:
        checkout(email=email, ip=ip)
    assert message in refused.value.message and "chargebacks" not in refused.value.message
    assert RiskDecision.objects.get().inputs["kind"] == kind


def test_blocklist_entries_expire_and_others_pass(product):
    blocklist_add(
        kind="email", value="late@example.com", expires_at=timezone.now() - timedelta(minutes=1)
    )
    blocklist_add(kind="network", value="203.0.113.0/24")
    assert checkout(email="late@example.com").status == OrderStatus.PENDING
    assert checkout(email="fine@example.com", ip="203.0.114.1").status == OrderStatus.PENDING


def test_blocklist_add_never_shortens_a_block():
    later = timezone.now() + timedelta(days=2)
    entry, created = blocklist_add(kind="email", value="a@example.com", expires_at=later)
    again, created_again = blocklist_add(kind="email", value=" A@example.com ")
    assert created and not created_again and again.pk == entry.pk
    assert BlocklistEntry.objects.get().expires_at is None


@transactional
def test_disposable_domains_are_an_optional_list(product):
    assert checkout(email="x@mailinator.com").status == OrderStatus.PENDING  # off by default
    only_rules(rule("Disposable"))
    with pytest.raises(Blocked) as refused:
        checkout(email="y@mailinator.com", ip="203.0.113.9")
    assert "Disposable" in refused.value.message


# --- Actions, order, scope ----------------------------------------------------------------


def test_flag_delivers_and_marks_the_order(
    product, django_capture_on_commit_callbacks, admin_client
):
    velocity("email", limit=1, action=RuleAction.FLAG)
    plain = checkout()
    flagged = checkout()
    with django_capture_on_commit_callbacks(execute=True):
        pay(flagged)
    flagged.refresh_from_db()
    assert flagged.status == OrderStatus.DELIVERED
    assert RiskDecision.objects.get(order=flagged).outcome == RuleAction.FLAG
    assert flagged.events.filter(kind="risk_flag").exists()
    # The owner finds it in the order list under "needs attention".
    page = admin_client.get("/admin/orders/order/?attention=flagged").content.decode()
    assert flagged.order_no in page and plain.order_no not in page


@transactional
def test_rules_run_in_order_and_the_first_block_wins(product, roomy_unpaid_limits):
    quantity_cap = RiskRule.objects.create(
        name="cap", kind="quantity_cap", action="block", limit=1, position=5
    )
    flag = RiskRule.objects.create(
        name="flag all", kind="quantity_cap", action="flag", limit=1, position=1
    )
    only_rules(quantity_cap, flag)
    with pytest.raises(Blocked):
        checkout(quantity=2)
    # The flag ran first but its order never existed: only the block is on record.
    assert list(RiskDecision.objects.values_list("rule_name", "outcome")) == [("cap", "block")]
    flag.action = RuleAction.BLOCK
    flag.buyer_message = "Single keys only, please."
    flag.save()
    with pytest.raises(Blocked) as refused:
        checkout(quantity=2)
    assert refused.value.message == "Single keys only, please."


@transactional
def test_disabled_rules_and_other_products_are_not_checked(product):
    stock_product(5, slug="q")
    cap = RiskRule.objects.create(
        name="cap p", kind="quantity_cap", action="block", limit=1, product=product
    )
    only_rules(cap)
    checkout("q", quantity=2)
    with pytest.raises(Blocked):
        checkout(quantity=2)
    cap.enabled = False
    cap.save()
    checkout(quantity=2, email="c@example.com")


def test_buyer_blocklisted_after_checkout_is_held_at_payment(
    product, django_capture_on_commit_callbacks
):
    order = checkout(email="later@example.com")
    blocklist_add(kind="email", value="later@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        pay(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    assert "blocklist" in order.events.get(kind="risk_hold").message


def test_orders_not_screened_are_delivered_as_before(product, django_capture_on_commit_callbacks):
    order = OrderFactory(product=product, quantity=15)
    with django_capture_on_commit_callbacks(execute=True):
        pay(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
