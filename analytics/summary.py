"""The weekly summary email to the owner: last week (Monday to Sunday, local time) against the
week before, sent once per week.

Sent on the first run of the periodic task after Monday ``SEND_AT_HOUR`` local time. A row per
week (``WeeklySummary``, unique ``week_start``) is claimed before sending, so two workers or a
task run twice send one email; the row then records what happened (sent, no owner email,
failed with the error), and a week that could not be sent is tried again on the next run.

The seam for the outbox (issue "Every channel, pushed live"): ``summary_deliver`` is the one
place the email leaves; with the outbox it writes an outbox message instead of sending, and
the outbox records the attempts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
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
from riskrules.models import RiskSettings
from shop.models import ShopSettings

logger = logging.getLogger(__name__)

SEND_AT_HOUR = 8
#: A claim whose worker died mid-send is taken over after this long.
STALE_CLAIM = timedelta(hours=1)


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
    with the buyers' translated ones)."""
    rollups_refresh()
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


def summary_deliver(*, summary: Summary, to: str) -> None:
    message = EmailMultiAlternatives(
        subject=summary.subject, body=summary.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    message.attach_alternative(summary.html, "text/html")
    message.send()


def _claim(week_start: date, now: datetime) -> WeeklySummary | None:
    """This week's row, ours to send; None if it was sent or someone else is sending it."""
    try:
        with transaction.atomic():
            return WeeklySummary.objects.create(week_start=week_start)
    except IntegrityError:
        pass
    retry = Q(status__in=[WeeklySummary.Status.FAILED, WeeklySummary.Status.NO_RECIPIENT]) | Q(
        status=WeeklySummary.Status.SENDING, created_at__lt=now - STALE_CLAIM
    )
    claimed = (
        WeeklySummary.objects.filter(week_start=week_start)
        .filter(retry)
        .update(status=WeeklySummary.Status.SENDING, created_at=now)
    )
    return WeeklySummary.objects.get(week_start=week_start) if claimed else None


def weekly_summary_send(*, now: datetime | None = None) -> WeeklySummary | None:
    """Send last week's summary if it is due and not sent yet; returns its row if this call
    handled it."""
    now = now or timezone.now()
    week_start = week_due(now)
    if week_start is None:
        return None
    row = _claim(week_start, now)
    if row is None:
        return None
    owner_email = ShopSettings.load().owner_email
    if not owner_email:
        logger.warning("weekly summary not sent: no owner email in the shop settings")
        row.status = WeeklySummary.Status.NO_RECIPIENT
        row.save(update_fields=["status"])
        return row
    summary = summary_build(week_start=week_start, now=now)
    row.recipient, row.subject = owner_email, summary.subject[:200]
    try:
        summary_deliver(summary=summary, to=owner_email)
    except Exception as exc:
        logger.exception("weekly summary for %s failed", week_start)
        row.status, row.error = WeeklySummary.Status.FAILED, f"{type(exc).__name__}: {exc}"[:500]
        row.save(update_fields=["status", "error", "recipient", "subject"])
        return row
    row.status, row.error, row.sent_at = WeeklySummary.Status.SENT, "", timezone.now()
    row.save(update_fields=["status", "error", "sent_at", "recipient", "subject"])
    return row
