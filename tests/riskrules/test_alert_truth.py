"""Alerts that tell the truth (issue #11): one alert per condition updated in place, with the
real state of its email; a count that counts the condition, not the checks; no forecast for a
product that already sold out; and conditions that clear resolve their alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from cardpool.models import CardKey
from orders.models import OrderStatus
from riskrules.alerts import (
    alert_check_stock,
    alert_email_state,
    alert_webhook_signature_failed,
    alerts_check,
)
from riskrules.models import Alert
from shop.models import ShopSettings
from tests.factories import OrderFactory, stock_product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a check and the email task it queues after commit, as a worker would."""

    def _run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return _run


def _owner_email(value: str) -> None:
    ShopSettings.objects.update_or_create(pk=1, defaults={"owner_email": value})


def _sold(product, units: int) -> None:
    when = timezone.now() - timedelta(days=1)
    OrderFactory(
        product=product,
        quantity=units,
        status=OrderStatus.DELIVERED,
        paid_at=when,
        delivered_at=when,
    )


class BrokenMailServer:
    """An email backend whose server refuses every message."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server refused the connection")


def test_no_owner_email_is_shown_as_not_emailed_never_as_emailed(run, admin_client):
    _owner_email("")
    stock_product(0, slug="gone", name="Gone Game")
    run(alerts_check)
    alert = Alert.objects.get(kind=Alert.Kind.LOW_STOCK)
    assert mail.outbox == [] and alert.email_message_key == ""
    assert alert.email_status == Alert.EmailStatus.NO_RECIPIENT
    assert alert_email_state(alert) == "Not emailed: no owner email in the shop settings"
    page = admin_client.get("/admin/riskrules/alert/").content.decode()
    assert "Not emailed: no owner email in the shop settings" in page
    assert "Emailed at" not in page

    _owner_email("owner@example.com")  # set later: the next check emails at once
    run(alerts_check, now=timezone.now() + timedelta(minutes=1))
    alert.refresh_from_db()
    assert len(mail.outbox) == 1 and alert_email_state(alert).startswith("Emailed at ")
    assert "Emailed at" in admin_client.get("/admin/riskrules/alert/").content.decode()


@override_settings(EMAIL_BACKEND="tests.riskrules.test_alert_truth.BrokenMailServer")
def test_a_refused_email_is_recorded_as_failed_with_the_error(run):
    _owner_email("owner@example.com")
    stock_product(1, slug="p", low_stock_threshold=5)
    run(alert_check_stock)  # the outbox's attempt fails; the alert says so, from its row
    state = alert_email_state(Alert.objects.get())
    assert "SMTP server refused the connection" in state and "Emailed" not in state


def test_the_low_stock_count_does_not_climb_with_every_check(run):
    _owner_email("owner@example.com")
    product = stock_product(3, slug="p", name="Game", low_stock_threshold=5)
    start = timezone.now()
    for minute in range(5):
        run(alert_check_stock, now=start + timedelta(minutes=minute))
    alert = Alert.objects.get()
    assert alert.count == 1 and alert.title == "Low stock: Game has 3 left"
    assert len(mail.outbox) == 1
    CardKey.objects.filter(pk=CardKey.objects.filter(product=product).first().pk).update(
        status=CardKey.Status.VOID
    )
    run(alert_check_stock, now=start + timedelta(minutes=6))
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.count == 1
    assert alert.title == "Low stock: Game has 2 left"  # updated in place


def test_event_alerts_count_events_not_checks(run):
    for _ in range(3):
        alert_webhook_signature_failed(client_ip="203.0.113.9")
    assert Alert.objects.get().count == 3


def test_runs_out_within_a_day_never_appears_after_the_product_sold_out(run):
    _owner_email("owner@example.com")
    product = stock_product(3, slug="p", name="Hot Game", low_stock_threshold=0)
    _sold(product, 70)  # 10 a day: 3 left runs out within a day
    run(alert_check_stock)
    forecast = Alert.objects.get(kind=Alert.Kind.STOCK_FORECAST)
    assert "runs out within a day: 3 left" in forecast.title

    CardKey.objects.filter(product=product).update(status=CardKey.Status.VOID)  # now none left
    run(alert_check_stock, now=timezone.now() + timedelta(minutes=1))
    forecast.refresh_from_db()
    assert forecast.resolved_at is not None  # no longer open, and not "0 left"
    assert "0 left" not in forecast.title
    open_alerts = Alert.objects.filter(acknowledged_at__isnull=True, resolved_at__isnull=True)
    assert not open_alerts.filter(kind=Alert.Kind.STOCK_FORECAST).exists()
    assert open_alerts.get(kind=Alert.Kind.LOW_STOCK).title == "Sold out: Hot Game has no keys left"


def test_a_restock_resolves_the_low_stock_alert(run):
    _owner_email("owner@example.com")
    product = stock_product(2, slug="p", low_stock_threshold=5)
    run(alert_check_stock)
    alert = Alert.objects.get()
    CardKey.objects.bulk_create(
        [CardKey(product=product, secret=b"x", fingerprint=f"restock-{i}") for i in range(10)]
    )
    run(alert_check_stock, now=timezone.now() + timedelta(minutes=1))
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.acknowledged_at is None
    # Low again later: a new alert for the new episode, the resolved one kept as it was.
    CardKey.objects.filter(product=product, fingerprint__startswith="restock").update(
        status=CardKey.Status.VOID
    )
    run(alert_check_stock, now=timezone.now() + timedelta(minutes=2))
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1
    assert Alert.objects.count() == 2


def test_the_admin_acknowledges_only_open_alerts(run, admin_client):
    _owner_email("owner@example.com")
    stock_product(0, slug="p")
    run(alert_check_stock)
    alert = Alert.objects.get()
    admin = get_user_model().objects.get(username="admin")
    response = admin_client.post(
        "/admin/riskrules/alert/",
        {"action": "acknowledge", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin
