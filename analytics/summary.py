"""The weekly summary email to the owner: last week (Monday to Sunday, local time) against the
week before, queued once per week.

Due on the first run of the periodic task after Monday ``SEND_AT_HOUR`` local time. One
transaction claims the week's row (``WeeklySummary``, unique ``week_start``), builds the email
and writes it into the outbox (``orders.outbox``, key ``weekly_summary:<week_start>:email``):
two workers, or a task run twice, queue one email, and an exception while building rolls the
claim back with it, so the next hourly run tries again. The outbox dispatcher sends it —
retried with backoff, every attempt recorded, the same Message-ID on every try — and the row's
state in the admin is read from that message (``summary_email_state``). With no owner email
nothing is queued, the row says so, and the next run queues it once an address is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from analytics.models import WeeklySummary
from analytics.periods import Period, local_midnight, local_today
from analytics.reports.time_of_sale import words
from analytics.rollups import rollups_refresh
from analytics.selectors import (
    currencies_seen,
    latency_histogram,
    paid_by_hour_of_week,
    product_names,
    products_in,
    sales_totals,
)
from analytics.service_data import open_alerts, stock_counts
from analytics.tables import change, rate
from core.money import to_decimal_string
from orders.outbox.selectors import message_state
from orders.outbox.services import weekly_summary_enqueue
from riskrules.models import RiskSettings
from shop.models import ShopSettings

logger = logging.getLogger(__name__)

SEND_AT_HOUR = 8
#: A week in one of these is done: its email is in the outbox (or was sent before there was one).
HANDLED = (WeeklySummary.Status.QUEUED, WeeklySummary.Status.SENT)


def week_due(now: datetime) -> date | None:
    """The Monday of the last full local week, once its summary is due; else None."""
    today = local_today(now)
    monday = today - timedelta(days=today.weekday())
    due_at = local_midnight(monday) + timedelta(hours=SEND_AT_HOUR)
    if now < due_at:
        monday -= timedelta(days=7)
    return monday - timedelta(days=7)


@dataclass
class Summary:
    subject: str
    text: str
    html: str


def summary_build(*, week_start: date, now: datetime) -> Summary:
    """The owner's email, in English like the admin (its templates sit with the reports', not
    with the buyers' translated ones). Reads the rollups as they are: the caller refreshes
    them first, outside its transaction (the refresh holds its lock until that commits)."""
    week = Period(week_start, week_start + timedelta(days=6))
    before = week.previous()
    currency = currencies_seen()[0]
    t = sales_totals(week.start, week.end, currency)
    b = sales_totals(before.start, before.end, currency)
    names = product_names()
    best = sorted(
        products_in(week, currency, ("units_paid", "revenue")).items(),
        key=lambda kv: (-kv[1]["revenue"], names.get(kv[0], "")),
    )[:3]
    threshold_ms = RiskSettings.current().slow_delivery_seconds * 1000
    lat = latency_histogram(week.start, week.end, within_ms=threshold_ms)
    shop = ShopSettings.load()
    money = lambda v: f"{to_decimal_string(v, currency)} {currency}"  # noqa: E731
    context: dict[str, Any] = {
        "shop_name": shop.shop_name,
        "week": week,
        "before": before,
        "rows": [
            (
                "Revenue",
                money(t["revenue"]),
                money(b["revenue"]),
                change(t["revenue"], b["revenue"]),
            ),
            ("Orders", t["orders"], b["orders"], change(t["orders"], b["orders"])),
            (
                "Paid",
                t["paid_orders"],
                b["paid_orders"],
                change(t["paid_orders"], b["paid_orders"]),
            ),
            (
                "Delivered",
                t["delivered_orders"],
                b["delivered_orders"],
                change(t["delivered_orders"], b["delivered_orders"]),
            ),
            (
                "Refunded",
                money(t["refunded_amount"]),
                money(b["refunded_amount"]),
                change(t["refunded_amount"], b["refunded_amount"]),
            ),
            (
                "New buyers",
                t["new_buyer_orders"],
                b["new_buyer_orders"],
                change(t["new_buyer_orders"], b["new_buyer_orders"]),
            ),
        ],
        "best": [
            (names.get(pid, f"#{pid}"), s["units_paid"], money(s["revenue"])) for pid, s in best
        ],
        "peak": words(paid_by_hour_of_week(week.start, week.end, currency))[0],
        "latency": lat,
        "within": rate(lat["within"], lat["n"]),
        "threshold_s": threshold_ms // 1000,
        "alerts": open_alerts().count(),
        "stock": stock_counts(),
        "reports_url": f"{settings.SITE_URL}/admin/reports/?{week.query()}",
    }
    subject = (
        f"[{shop.shop_name}] Week of {week.first.isoformat()}: {money(t['revenue'])}, "
        f"{t['paid_orders']} paid orders"
    )
    return Summary(
        subject=subject,
        text=render_to_string("analytics/emails/weekly_summary.txt", context),
        html=render_to_string("analytics/emails/weekly_summary.html", context),
    )


def _claim(week_start: date) -> WeeklySummary | None:
    """This week's row, ours in the current transaction; None if its email is queued already.

    A second worker's INSERT waits on the unique index until ours commits (then finds the row
    handled) or rolls back (then claims it itself)."""
    try:
        with transaction.atomic():
            return WeeklySummary.objects.create(week_start=week_start)
    except IntegrityError:
        pass
    claimed = (
        WeeklySummary.objects.filter(week_start=week_start)
        .exclude(status__in=HANDLED)
        .update(status=WeeklySummary.Status.SENDING)
    )
    return WeeklySummary.objects.get(week_start=week_start) if claimed else None


def weekly_summary_send(*, now: datetime | None = None) -> WeeklySummary | None:
    """Queue last week's summary in the outbox if it is due and not queued yet; returns its
    row if this call handled it."""
    now = now or timezone.now()
    week_start = week_due(now)
    if week_start is None:
        return None
    if WeeklySummary.objects.filter(week_start=week_start, status__in=HANDLED).exists():
        return None  # the hourly runs of the rest of the week: no refresh, no transaction
    rollups_refresh()
    with transaction.atomic():
        row = _claim(week_start)
        if row is None:
            return None
        owner_email = ShopSettings.load().owner_email
        if not owner_email:
            logger.warning("weekly summary not queued: no owner email in the shop settings")
            row.status = WeeklySummary.Status.NO_RECIPIENT
            row.save(update_fields=["status"])
            return row
        summary = summary_build(week_start=week_start, now=now)
        row.message_key = weekly_summary_enqueue(
            week_start=week_start,
            owner_email=owner_email,
            subject=summary.subject,
            text=summary.text,
            html=summary.html,
        )
        row.status, row.recipient, row.subject = (
            WeeklySummary.Status.QUEUED,
            owner_email,
            summary.subject[:200],
        )
        row.save(update_fields=["status", "recipient", "subject", "message_key"])
    return row


def summary_email_state(row: WeeklySummary) -> str:
    """What really happened to the week's email, in words, from its outbox message."""
    if row.status == WeeklySummary.Status.NO_RECIPIENT:
        return "Not sent: no owner email in the shop settings"
    state = message_state(row.message_key, noun="Email", sent="Emailed", waiting="Email queued")
    if state is not None:
        return state
    # A row from before the outbox
    if row.status == WeeklySummary.Status.SENT and row.sent_at:
        return f"Emailed at {timezone.localtime(row.sent_at):%Y-%m-%d %H:%M}"
    if row.status == WeeklySummary.Status.FAILED:
        return f"Email failed: {row.error}"[:300]
    return WeeklySummary.Status(row.status).label
