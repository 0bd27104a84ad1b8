"""The weekly summary email: last week against the week before, sent once per week after
Monday 08:00 local time, with what really happened to it recorded."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings

from analytics.models import WeeklySummary
from analytics.summary import week_due, weekly_summary_send
from shop.models import ShopSettings
from tests.analytics.history import local

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def owner():
    ShopSettings.objects.update_or_create(
        pk=1, defaults={"owner_email": "owner@example.com", "shop_name": "Kami Test"}
    )


class RefusingServer:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise TimeoutError("mail server timed out")


def test_the_week_is_due_on_monday_morning_local_time(shop_zone):
    from datetime import date

    assert week_due(local("2026-11-16 07:59")) == date(2026, 11, 2)  # not yet: the one before
    assert week_due(local("2026-11-16 08:00")) == date(2026, 11, 9)
    assert week_due(local("2026-11-22 23:00")) == date(2026, 11, 9)


def test_summary_of_the_hand_built_week_sent_once(week, owner):
    now = local("2026-11-16 09:00")
    row = weekly_summary_send(now=now)
    assert row is not None and row.status == WeeklySummary.Status.SENT
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@example.com"]
    assert message.subject == "[Kami Test] Week of 2026-11-09: 105.00 USD, 5 paid orders"
    assert "Revenue: 105.00 USD (week before: 10.00 USD, +950%)" in message.body
    assert "- Beta: 3 keys, 75.00 USD" in message.body
    assert "Peak: Wednesdays 00:00–01:00" in message.body
    assert "p50 ≤ 500 ms, p95 ≤ 15000 ms" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "105.00 USD" in html

    assert weekly_summary_send(now=local("2026-11-16 10:00")) is None  # the hourly run again
    assert len(mail.outbox) == 1 and WeeklySummary.objects.count() == 1


def test_no_owner_email_is_recorded_and_sent_once_one_is_set(week):
    ShopSettings.objects.update_or_create(pk=1, defaults={"owner_email": ""})
    row = weekly_summary_send(now=local("2026-11-16 09:00"))
    assert row.status == WeeklySummary.Status.NO_RECIPIENT and mail.outbox == []
    ShopSettings.objects.filter(pk=1).update(owner_email="owner@example.com")
    row = weekly_summary_send(now=local("2026-11-16 10:00"))
    assert row.status == WeeklySummary.Status.SENT and len(mail.outbox) == 1


def test_a_failed_send_is_recorded_and_retried_on_the_next_run(week, owner):
    with override_settings(EMAIL_BACKEND="tests.analytics.test_summary.RefusingServer"):
        row = weekly_summary_send(now=local("2026-11-16 09:00"))
    assert row.status == WeeklySummary.Status.FAILED
    assert row.error == "TimeoutError: mail server timed out" and row.sent_at is None
    row = weekly_summary_send(now=local("2026-11-16 10:00"))
    assert row.status == WeeklySummary.Status.SENT and len(mail.outbox) == 1


def test_the_beat_runs_it_hourly_on_the_notify_queue():
    from shop.celery import SIDE_EFFECT_TASKS

    entry = settings.CELERY_BEAT_SCHEDULE["analytics-weekly-summary"]
    assert entry["task"] == "analytics.tasks.send_weekly_summary" and entry["schedule"] == 3600
    assert settings.CELERY_BEAT_SCHEDULE["analytics-refresh-rollups"]["task"] == (
        "analytics.tasks.refresh_rollups"
    )
    assert {"analytics.tasks.send_weekly_summary", "analytics.tasks.refresh_rollups"} <= (
        SIDE_EFFECT_TASKS
    )
