"""The weekly summary email: last week against the week before, queued once per week after
Monday 08:00 local time in the outbox, sent by its dispatcher, and its real state shown."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from analytics.models import WeeklySummary
from analytics.summary import summary_email_state, week_due, weekly_summary_send
from orders.outbox.channels import message_id
from orders.outbox.dispatch import backoff, messages_dispatch
from orders.outbox.models import (
    AttemptOutcome,
    MessageAttempt,
    MessagePurpose,
    MessageStatus,
    OutboxMessage,
)
from orders.outbox.services import weekly_summary_enqueue
from shop.models import ShopSettings
from tests.analytics.history import local
from tests.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

MONDAY = "2026-11-16 09:00"
KEY = "weekly_summary:2026-11-09:email"


@pytest.fixture
def owner():
    ShopSettings.objects.update_or_create(
        pk=1, defaults={"owner_email": "owner@example.com", "shop_name": "Kami Test"}
    )


class RefusingServer:
    """A mail server that times out; remembers the Message-IDs it was offered."""

    offered: list[str] = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        RefusingServer.offered += [m.extra_headers["Message-ID"] for m in messages]
        raise TimeoutError("mail server timed out")


def due_now() -> None:
    """Time travel: every waiting message is due (instead of sleeping through its backoff)."""
    OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_the_week_is_due_on_monday_morning_local_time(shop_zone):
    assert week_due(local("2026-11-16 07:59")) == date(2026, 11, 2)  # not yet: the one before
    assert week_due(local("2026-11-16 08:00")) == date(2026, 11, 9)
    assert week_due(local("2026-11-22 23:00")) == date(2026, 11, 9)


def test_summary_of_the_hand_built_week_queued_once_and_sent_by_the_outbox(week, owner):
    row = weekly_summary_send(now=local(MONDAY))
    assert row is not None and row.status == WeeklySummary.Status.QUEUED
    assert row.message_key == KEY and mail.outbox == []  # nothing leaves before the dispatcher
    assert summary_email_state(row) == "Email queued"
    queued = OutboxMessage.objects.get()
    assert (queued.purpose, queued.recipient) == (
        MessagePurpose.WEEKLY_SUMMARY,
        "owner@example.com",
    )

    assert messages_dispatch() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@example.com"]
    assert message.extra_headers["Message-ID"] == message_id(KEY)
    assert message.subject == "[Kami Test] Week of 2026-11-09: 105.00 USD, 5 paid orders"
    assert "Revenue: 105.00 USD (week before: 10.00 USD, +950%)" in message.body
    assert "- Beta: 3 keys, 75.00 USD" in message.body
    assert "Peak: Wednesdays 00:00–01:00" in message.body
    assert "p50 ≤ 500 ms, p95 ≤ 15000 ms" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "105.00 USD" in html
    assert summary_email_state(row).startswith("Emailed at ")

    assert weekly_summary_send(now=local("2026-11-16 10:00")) is None  # the hourly run again
    assert messages_dispatch() == 0
    assert len(mail.outbox) == 1 and WeeklySummary.objects.count() == 1
    assert OutboxMessage.objects.count() == 1


def test_the_outbox_keeps_one_message_per_week():
    for text in ("first", "second"):
        key = weekly_summary_enqueue(
            week_start=date(2026, 11, 9),
            owner_email="o@example.com",
            subject="s",
            text=text,
            html="",
        )
        assert key == KEY
    assert list(OutboxMessage.objects.values_list("payload__text", flat=True)) == ["first"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_queue_one_email(week, owner):
    results = run_concurrently(2, lambda i: weekly_summary_send(now=local(MONDAY)))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if isinstance(r, WeeklySummary)]) == 1, results
    assert WeeklySummary.objects.get().status == WeeklySummary.Status.QUEUED
    messages_dispatch()  # whatever the eager kick after each commit did not send yet
    assert OutboxMessage.objects.get().status == MessageStatus.SENT
    assert len(mail.outbox) == 1


def test_no_owner_email_queues_nothing_and_says_so_until_one_is_set(week, admin_client):
    ShopSettings.objects.update_or_create(pk=1, defaults={"owner_email": ""})
    row = weekly_summary_send(now=local(MONDAY))
    assert row.status == WeeklySummary.Status.NO_RECIPIENT and row.message_key == ""
    assert not OutboxMessage.objects.exists() and messages_dispatch() == 0
    assert summary_email_state(row) == "Not sent: no owner email in the shop settings"
    page = admin_client.get("/admin/analytics/weeklysummary/").content.decode()
    assert "Not sent: no owner email in the shop settings" in page

    ShopSettings.objects.filter(pk=1).update(owner_email="owner@example.com")
    row = weekly_summary_send(now=local("2026-11-16 10:00"))
    assert row.status == WeeklySummary.Status.QUEUED
    assert messages_dispatch() == 1 and len(mail.outbox) == 1


def test_a_failing_mail_server_is_shown_and_the_outbox_sends_it_later(
    week, owner, settings, admin_client
):
    RefusingServer.offered = []
    settings.EMAIL_BACKEND = "tests.analytics.test_summary.RefusingServer"
    row = weekly_summary_send(now=local(MONDAY))
    assert messages_dispatch() == 1 and mail.outbox == []
    message = OutboxMessage.objects.get()
    attempt = MessageAttempt.objects.get()
    assert message.status == MessageStatus.PENDING and attempt.outcome == AttemptOutcome.FAILED
    assert message.next_attempt_at - attempt.finished_at == backoff(1)
    state = "Email not sent yet (1 attempts): TimeoutError: mail server timed out"
    assert summary_email_state(row) == state
    assert state in admin_client.get("/admin/analytics/weeklysummary/").content.decode()
    assert weekly_summary_send(now=local("2026-11-16 10:00")) is None  # the outbox's to retry
    assert messages_dispatch() == 0  # not due before its backoff

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    due_now()
    assert messages_dispatch() == 1 and len(mail.outbox) == 1
    assert RefusingServer.offered == [mail.outbox[0].extra_headers["Message-ID"]]
    assert [a.outcome for a in MessageAttempt.objects.order_by("number")] == [
        AttemptOutcome.FAILED,
        AttemptOutcome.SENT,
    ]
    assert summary_email_state(row).startswith("Emailed at ")
    assert "Emailed at " in admin_client.get("/admin/analytics/weeklysummary/").content.decode()


def test_a_refused_recipient_is_shown_as_failed(week, owner, settings):
    settings.EMAIL_BACKEND = "tests.email_backends.RefusingEmailBackend"
    row = weekly_summary_send(now=local(MONDAY))
    messages_dispatch()
    assert OutboxMessage.objects.get().status == MessageStatus.FAILED
    assert summary_email_state(row) == "Email failed: the mail server refused owner@example.com"


def test_a_build_that_fails_leaves_no_claim_and_the_next_run_queues_it(week, owner, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the rollups are unreadable")

    with monkeypatch.context() as patch:
        patch.setattr("analytics.summary.summary_build", broken)
        with pytest.raises(RuntimeError):
            weekly_summary_send(now=local(MONDAY))
    assert not WeeklySummary.objects.exists() and not OutboxMessage.objects.exists()
    row = weekly_summary_send(now=local("2026-11-16 10:00"))
    assert row.status == WeeklySummary.Status.QUEUED and OutboxMessage.objects.count() == 1


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
