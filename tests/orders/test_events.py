"""Order events are a fixed list (``OrderEventKind``), each note written by its own constructor
in ``orders.events``, status steps by ``orders.transitions`` — and nothing else writes them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders import events
from orders.events import OrderEventKind
from orders.models import OrderEvent, OrderStatus
from orders.payments.stripe_events import build_event
from orders.review import order_review_approve
from orders.risk import FLAG, HOLD, Decision
from orders.services import order_expire
from orders.transitions import InvalidTransition, Step, order_transition
from riskrules.models import ReviewAction
from riskrules.services import review_record
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event, refund_event

ROOT = Path(__file__).resolve().parents[2]


def _kinds() -> set[str]:
    return set(OrderEvent.objects.values_list("kind", flat=True))


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    def _post(event):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, event)

    return _post


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_payment_flows_write_only_listed_kinds(deliver):
    product = stock_product(6, slug="p")
    paid = OrderFactory(product=product, quantity=1)
    deliver(completed_event(paid, payment_intent="pi_flow", session_id="cs_flow"))
    deliver(completed_event(paid, payment_intent="pi_flow", session_id="cs_flow"))  # again
    deliver(completed_event(paid, session_id="cs_other"))  # paid twice
    deliver(refund_event("pi_flow", amount=paid.amount, amount_refunded=1))
    deliver(
        build_event(
            "charge.dispute.created",
            {"id": "dp_1", "object": "dispute", "payment_intent": "pi_flow", "amount": 1},
        )
    )
    deliver(refund_event("pi_flow", amount=paid.amount, amount_refunded=paid.amount))
    short = OrderFactory(product=product, quantity=1)
    deliver(completed_event(short, amount_total=short.amount - 1))  # held for review
    admin = get_user_model().objects.create_user("owner", password="x")
    order_review_approve(order_id=short.pk, actor=admin)
    review_record(order=short, action=ReviewAction.Action.APPROVE, actor=admin, result="ok")
    unsettled = OrderFactory(product=product, quantity=1)
    deliver(completed_event(unsettled, payment_status="unpaid"))
    lapsed = OrderFactory(product=product, quantity=1)
    type(lapsed).objects.filter(pk=lapsed.pk).update(hold_expires_at=lapsed.created_at)
    order_expire(order_id=lapsed.pk)

    written = _kinds()
    assert written <= set(OrderEventKind.values), written - set(OrderEventKind.values)
    assert {
        "paid",
        "delivered",
        "duplicate_payment_event",
        "second_payment",
        "partial_refund",
        "dispute_opened",
        "refunded",
        "payment_mismatch",
        "review_approve",
        "payment_not_settled",
        "expired",
    } <= written


@pytest.mark.django_db
def test_constructors_write_their_message_and_data():
    order = OrderFactory(product=stock_product(2, slug="c"), quantity=2)
    actor = get_user_model().objects.create_user("owner", password="x")
    facts = {"session": "cs_1", "event": "evt_1"}
    cases = [
        (
            events.event_order_created(order),
            "created",
            "",
            {"quantity": 2, "amount": order.amount, "holds_keys": True},
        ),
        (events.event_payment_not_settled(order, facts), "payment_not_settled", "", facts),
        (
            events.event_second_payment(order, facts, same_session=True),
            "duplicate_payment_event",
            "",
            facts,
        ),
        (
            events.event_second_payment(order, facts, same_session=False),
            "second_payment",
            "Paid twice: refund the extra payment.",
            facts,
        ),
        (
            events.event_refund_asked(order, amount=5, actor=actor),
            "refund_asked",
            "",
            {"amount": 5},
        ),
        (
            events.event_partial_refund(order, refunded_total=3, paid=10, facts=facts),
            "partial_refund",
            "Refunded 3 of 10.",
            facts,
        ),
        (
            events.event_dispute_opened(
                order, reason=None, dispute_id="dp_1", amount=7, event_id="evt_2"
            ),
            "dispute_opened",
            "Dispute opened: no reason given.",
            {"dispute": "dp_1", "amount": 7, "event": "evt_2"},
        ),
        (
            events.event_commission_skipped(order, reason="Sold in EUR."),
            "commission_skipped",
            "Sold in EUR.",
            {},
        ),
        (
            events.event_risk_noted(order, Decision(HOLD, "Big order.", {"rule": 1})),
            "risk_hold_decided",
            "Big order.",
            {"rule": 1},
        ),
        (
            events.event_risk_noted(order, Decision(FLAG, "New buyer.")),
            "risk_flag",
            "New buyer.",
            {},
        ),
        (
            events.event_review_recorded(order, action="block_ip", result="added", actor=actor),
            "review_block_ip",
            "Buyer IP blocklisted: added",
            {},
        ),
    ]
    for event, kind, message, data in cases:
        event.refresh_from_db()
        assert (event.kind, event.message, event.data) == (kind, message, data)
    assert OrderEvent.objects.get(kind="created").to_status == OrderStatus.PENDING
    assert OrderEvent.objects.get(kind="refund_asked").actor == actor
    assert OrderEvent.objects.get(kind="review_block_ip").actor == actor


def test_every_review_action_has_its_kind():
    for action in ReviewAction.Action:
        kind = OrderEventKind(f"review_{action.value}")
        assert kind.label == action.label  # the history says what the review queue says


def test_kinds_are_checked_where_they_are_written():
    assert Step(OrderStatus.EXPIRED).kind == OrderEventKind.EXPIRED
    assert Step(OrderStatus.ON_HOLD, kind=OrderEventKind.RISK_HOLD).kind == "risk_hold"
    with pytest.raises(ValueError):
        Step(OrderStatus.ON_HOLD)  # a hold says why: there is no bare "on_hold" kind
    with pytest.raises(ValueError):
        Step(OrderStatus.PAID, kind="made_up")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        events.event_review_recorded(None, action="shrug", result="", actor=None)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_a_transition_writes_its_kind():
    order = OrderFactory(product=stock_product(1, slug="t"), quantity=1)
    order_transition(order=order, to_status=OrderStatus.CANCELLED)
    with pytest.raises(InvalidTransition):
        order_transition(order=order, to_status=OrderStatus.DELIVERED)
    assert list(order.events.values_list("kind", "from_status", "to_status")) == [
        ("cancelled", "pending", "cancelled")
    ]


def _source_files():
    skip = {".venv", "node_modules", "migrations", "var", ".git", "static"}
    for path in ROOT.rglob("*.py"):
        if not skip.intersection(path.relative_to(ROOT).parts):
            yield path


def _writes_events(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in {"order_note", "OrderEvent"}
    if isinstance(func, ast.Attribute):
        if func.attr == "order_note":
            return True
        # OrderEvent.objects.create / bulk_create / get_or_create …
        owner = func.value
        return (
            func.attr in {"create", "bulk_create", "get_or_create", "update_or_create"}
            and isinstance(owner, ast.Attribute)
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "OrderEvent"
        )
    return False


def test_only_orders_events_writes_notes():
    allowed = {ROOT / "orders" / "events.py"}
    offenders = []
    for path in _source_files():
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if _writes_events(node)
        ]
    assert offenders == [], "write order events through orders.events constructors: " + ", ".join(
        offenders
    )


@pytest.mark.django_db
def test_no_migration_is_missing():
    call_command("makemigrations", "orders", "--check", "--dry-run", verbosity=0)
