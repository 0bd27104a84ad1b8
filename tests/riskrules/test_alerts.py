"""Alerts: each condition, one open alert per condition, email at most once an hour until
acknowledged, and the direct triggers (webhook signature failures, holds and blocks)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from orders.models import Delivery, OrderStatus, PaymentEvent
from riskrules.alerts import (
    alert_acknowledge,
    alert_check_failed_deliveries,
    alert_check_risk_spike,
    alert_check_slow_deliveries,
    alert_check_stock,
    alerts_check,
)
from riskrules.models import Alert, RiskDecision, RiskRule, RiskSettings, RuleAction
from shop.models import ShopSettings
from tests.factories import OrderFactory, stock_product
from tests.riskrules.conftest import checkout, only_rules
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def owner(django_capture_on_commit_callbacks):
    ShopSettings.objects.update_or_create(pk=1, defaults={"owner_email": "owner@example.com"})


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run a check and what it enqueues after commit (the alert email), as a worker would."""

    def _run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return _run


def sold(product, units: int, days_ago: float = 1) -> None:
    when = timezone.now() - timedelta(days=days_ago)
    OrderFactory(
        product=product,
        quantity=units,
        status=OrderStatus.DELIVERED,
        paid_at=when,
        delivered_at=when,
    )


def test_low_stock_alert_emails_the_owner_once_an_hour_until_acknowledged(run_after_commit):
    product = stock_product(2, slug="p", name="Game Key", low_stock_threshold=5)
    stock_product(10, slug="plenty", low_stock_threshold=5)
    assert run_after_commit(alert_check_stock) == 1
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.LOW_STOCK and alert.subject == f"product:{product.pk}"
    assert alert.title == "Low stock: Game Key has 2 left"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@example.com"]
    assert "Game Key has 2 left" in mail.outbox[0].subject

    run_after_commit(alert_check_stock)  # still low a minute later: the same alert, not re-sent
    alert.refresh_from_db()
    assert alert.count == 1 and len(mail.outbox) == 1
    run_after_commit(alert_check_stock, now=timezone.now() + timedelta(minutes=61))
    assert len(mail.outbox) == 2  # an hour on, unacknowledged: a reminder

    alert_acknowledge(alert_ids=[alert.pk], user=None)
    run_after_commit(alert_check_stock, now=timezone.now() + timedelta(minutes=30))
    assert Alert.objects.count() == 1 and len(mail.outbox) == 2  # acknowledged: quiet a while
    run_after_commit(alert_check_stock, now=timezone.now() + timedelta(minutes=61))
    assert Alert.objects.filter(acknowledged_at__isnull=True).count() == 1  # still low: reopens
    assert len(mail.outbox) == 3


def test_stock_forecast_under_a_day_at_last_weeks_pace(run_after_commit):
    product = stock_product(10, slug="p", low_stock_threshold=0)
    sold(product, 70)  # 10 a day: exactly one day left, not less
    sold(product, 50, days_ago=9)  # outside the 7 days
    assert alert_check_stock() == 0
    sold(product, 7)  # 11 a day
    assert run_after_commit(alert_check_stock) == 1
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.STOCK_FORECAST
    assert "runs out within a day: 10 left, selling 11.0 a day" in alert.title


def test_slow_delivery_over_ten_seconds(run_after_commit):
    now = timezone.now()
    for latency in (9_000, 12_500):
        order = OrderFactory(status=OrderStatus.DELIVERED, paid_at=now, delivered_at=now)
        Delivery.objects.create(order=order, key_count=1, latency_ms=latency)
    run_after_commit(alert_check_slow_deliveries)
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.SLOW_DELIVERY and "worst 12.5 s" in alert.title
    assert "1 order(s)" in alert.title and len(mail.outbox) == 1
    # Acknowledged: the same slow delivery is not reported again.
    alert_acknowledge(alert_ids=[alert.pk], user=None)
    assert alert_check_slow_deliveries() == 0


def test_spike_of_holds_and_blocks(run_after_commit):
    RiskSettings.objects.update_or_create(pk=1, defaults={"spike_holds_blocks": 3})
    for outcome in (RuleAction.HOLD, RuleAction.BLOCK, RuleAction.FLAG):
        RiskDecision.objects.create(rule_name="r", rule_kind="velocity", outcome=outcome)
    assert alert_check_risk_spike() == 0  # flags do not count
    RiskDecision.objects.create(rule_name="r", rule_kind="velocity", outcome=RuleAction.BLOCK)
    run_after_commit(alert_check_risk_spike)
    assert Alert.objects.get().title.startswith("Spike: 3 orders held or blocked")


def test_a_hold_at_checkout_triggers_the_spike_check_directly(run_after_commit):
    RiskSettings.objects.update_or_create(pk=1, defaults={"spike_holds_blocks": 1})
    stock_product(5, slug="p")
    only_rules(
        RiskRule.objects.create(name="hold all", kind="quantity_cap", action="hold", limit=0)
    )
    run_after_commit(checkout)
    assert Alert.objects.filter(kind=Alert.Kind.RISK_SPIKE).exists()


def test_failed_deliveries_from_the_payment_inbox(run_after_commit):
    PaymentEvent.objects.create(
        provider="stripe", event_id="evt_ok", type="x", payload={}, processed_at=timezone.now()
    )
    assert alert_check_failed_deliveries() == 0
    PaymentEvent.objects.create(
        provider="stripe", event_id="evt_bad", type="x", payload={}, last_error="KeyError: x"
    )
    run_after_commit(alert_check_failed_deliveries)
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.FAILED_DELIVERY and "evt_bad: KeyError: x" in alert.detail


def test_webhook_signature_failures_alert_directly(client, run_after_commit):
    order = OrderFactory(product=stock_product(1, slug="p"))
    for _ in range(3):
        response = run_after_commit(
            post_event, client, completed_event(order), secret="whsec_forged"
        )
        assert response.status_code == 400
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.WEBHOOK_SIGNATURE and alert.count == 3
    assert "127.0.0.1" in alert.detail
    assert len(mail.outbox) == 1  # three failures, one email


def test_no_owner_email_still_shows_the_alert(run_after_commit):
    ShopSettings.objects.filter(pk=1).update(owner_email="")
    stock_product(0, slug="p")
    run_after_commit(alerts_check)
    assert Alert.objects.filter(kind=Alert.Kind.LOW_STOCK).exists()
    assert mail.outbox == []


def test_periodic_task_runs_every_check():
    from django.conf import settings

    from riskrules.tasks import check_alerts

    stock_product(0, slug="p")
    assert check_alerts() >= 1
    assert settings.CELERY_BEAT_SCHEDULE["riskrules-check-alerts"]["task"] == (
        "riskrules.tasks.check_alerts"
    )
