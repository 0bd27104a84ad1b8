"""Alerts: conditions the owner should hear about, in the admin and by email.

One open alert per condition (``kind`` + ``subject``, a partial unique constraint): a condition
seen again updates its alert in place instead of adding one. Its ``count`` is what the
condition counts — events for event conditions (each signature failure adds one; a periodic
check sets the number it saw), and 1 for a state condition however often it is checked. A
state condition (low stock, the forecast, failed payment events) that no longer holds
*resolves* its alert, so nothing open claims what is no longer true: a product that sold out
says "sold out", not "runs out within a day".

Email goes to ``ShopSettings.owner_email`` when the alert opens and then at most once per
interval (an hour by default) while it stays open; the interval is claimed by a conditional
UPDATE, so two workers checking at once still queue one email. The email is an outbox row
written with that claim (``orders.outbox``): a broker outage delays it, never loses it. What
really happened to it is read from that row (``alert_email_state``: emailed at, failing with
the error, given up), and with no owner email set nothing is queued and the alert says so.

After the owner acknowledges, *event* conditions (slow deliveries, spikes, signature failures)
only count what happened since the acknowledgement, and *state* conditions stay quiet for one
interval before they may reopen: acknowledging means "I know", not "tell me again in a minute".

Checked by the periodic ``riskrules.tasks.check_alerts`` and triggered directly where the
condition arises (blocks and holds, webhook signature failures, checkouts for stock).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.template.loader import render_to_string
from django.utils import timezone

from orders.models import Delivery, PaymentEvent
from orders.outbox.selectors import message_state
from orders.outbox.services import owner_alert_enqueue
from orders.stock import with_stock
from riskrules.models import Alert, RiskSettings
from riskrules.selectors import holds_and_blocks_since, units_sold_since
from shop.models import Product, ShopSettings

logger = logging.getLogger(__name__)

EVENT_LOOKBACK = timedelta(hours=1)


def _interval(risk: RiskSettings) -> timedelta:
    return timedelta(minutes=risk.alert_email_interval_minutes)


def _last_acknowledged(kind: str, subject: str) -> datetime | None:
    return Alert.objects.filter(
        kind=kind, subject=subject, acknowledged_at__isnull=False
    ).aggregate(last=Max("acknowledged_at"))["last"]


def _events_since(kind: str, subject: str, *, now: datetime, lookback: timedelta) -> datetime:
    """Where an event condition starts counting: the lookback, or the last acknowledgement."""
    since = now - lookback
    acknowledged = _last_acknowledged(kind, subject)
    return max(since, acknowledged) if acknowledged else since


def alert_raise(
    *,
    kind: str,
    subject: str = "",
    title: str,
    detail: str = "",
    count: int | None = None,
    snooze_after_ack: bool = False,
    now: datetime | None = None,
) -> Alert | None:
    """Open or refresh the alert for this condition; queue its email if its interval allows.

    ``count``: the number the condition counts now (set as is); None for one more event."""
    now = now or timezone.now()
    risk = RiskSettings.current()
    interval = _interval(risk)
    if snooze_after_ack:
        acknowledged = _last_acknowledged(kind, subject)
        if acknowledged and acknowledged > now - interval:
            return None
    with transaction.atomic():
        open_alerts = Alert.objects.select_for_update().filter(
            kind=kind, subject=subject, acknowledged_at__isnull=True, resolved_at__isnull=True
        )
        alert = open_alerts.first()
        if alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        kind=kind,
                        subject=subject,
                        title=title[:200],
                        detail=detail,
                        count=1 if count is None else count,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
            except IntegrityError:  # another worker opened it first: refresh theirs
                alert = open_alerts.first()
                if alert is not None:
                    _refresh(alert, title=title, detail=detail, count=count, now=now)
        else:
            _refresh(alert, title=title, detail=detail, count=count, now=now)
        if alert is None:
            return None
        _queue_email(alert, interval=interval, now=now)
    alert.refresh_from_db()
    return alert


def _refresh(alert: Alert, *, title: str, detail: str, count: int | None, now: datetime) -> None:
    Alert.objects.filter(pk=alert.pk).update(
        title=title[:200],
        detail=detail,
        count=F("count") + 1 if count is None else count,
        last_seen_at=now,
    )


def _queue_email(alert: Alert, *, interval: timedelta, now: datetime) -> None:
    """Queue the alert's email (an outbox row) if none was queued within the interval. With
    no owner email nothing is queued and the alert says so; the next check tries again, so an
    email set meanwhile is used at once."""
    if not ShopSettings.load().owner_email:
        Alert.objects.filter(pk=alert.pk).update(email_status=Alert.EmailStatus.NO_RECIPIENT)
        return
    due = Q(email_queued_at__isnull=True) | Q(email_queued_at__lte=now - interval)
    if Alert.objects.filter(pk=alert.pk).filter(due).update(email_queued_at=now):
        alert.refresh_from_db()
        key = alert_email_enqueue(alert=alert)
        Alert.objects.filter(pk=alert.pk).update(
            email_status=Alert.EmailStatus.QUEUED if key else Alert.EmailStatus.NO_RECIPIENT,
            email_message_key=key or "",
        )


def alert_resolve(*, kind: str, subject: str, now: datetime | None = None) -> int:
    """The condition is gone: its open alert, if any, is resolved (kept, no longer open)."""
    return Alert.objects.filter(
        kind=kind, subject=subject, acknowledged_at__isnull=True, resolved_at__isnull=True
    ).update(resolved_at=now or timezone.now())


def alert_acknowledge(*, alert_ids: list[int], user) -> int:
    """Acknowledge open alerts (who and when); returns how many were open."""
    return Alert.objects.filter(
        pk__in=alert_ids, acknowledged_at__isnull=True, resolved_at__isnull=True
    ).update(
        acknowledged_at=timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None
    )


def alert_email_enqueue(*, alert: Alert) -> str | None:
    """The owner's email for this sending of ``alert`` (its ``email_queued_at``), as an outbox
    row of the caller's transaction: it goes out after the commit, retried until sent. Returns
    the message's key, or None with no owner email to send it to."""
    shop = ShopSettings.load()
    if not shop.owner_email:
        logger.warning("alert %s not emailed: no owner email in the shop settings", alert.title)
        return None
    sent_for = alert.email_queued_at or timezone.now()
    context = {
        "alert": alert,
        "admin_url": f"{django_settings.SITE_URL}/admin/riskrules/alert/{alert.pk}/change/",
    }
    return owner_alert_enqueue(
        key=f"alert-{alert.pk}-{int(sent_for.timestamp() * 1000)}",
        owner_email=shop.owner_email,
        subject=f"[{shop.shop_name}] {alert.title}",
        text=render_to_string("riskrules/alert_email.txt", context),
    )


def alert_email_send(*, alert_id: int) -> bool:
    """For ``send_alert_email`` tasks queued before the outbox: write the alert's message (a
    no-op if it was written already). False if there is nobody to tell or nothing to say."""
    with transaction.atomic():
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is None or not alert.is_open:
            return False
        key = alert_email_enqueue(alert=alert)
        if key:
            Alert.objects.filter(pk=alert.pk).update(email_message_key=key)
        return key is not None


def alert_email_state(alert: Alert) -> str:
    """What really happened to the alert's latest email, in words, from its outbox row."""
    if alert.email_status == Alert.EmailStatus.NO_RECIPIENT:
        return Alert.EmailStatus.NO_RECIPIENT.label
    state = message_state(
        alert.email_message_key,
        noun="Email",
        sent="Emailed",
        waiting=Alert.EmailStatus.QUEUED.label,
    )
    return state or Alert.EmailStatus(alert.email_status).label


# --- Conditions --------------------------------------------------------------------------------


def alert_check_stock(*, now: datetime | None = None, product_ids: list[int] | None = None) -> int:
    """Low stock (below the product's threshold; "sold out" at none) and the forecast (some
    stock left, but under a day of sales at the pace of the last ``forecast_days`` days). Each
    alert is refreshed in place while its condition holds and resolved when it stops."""
    now = now or timezone.now()
    risk = RiskSettings.current()
    products = Product.objects.filter(on_sale=True)
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    sold = units_sold_since(since=now - timedelta(days=risk.forecast_days))
    raised = 0
    for product in with_stock(products, now=now):
        subject = f"product:{product.pk}"
        if product.stock < product.low_stock_threshold or product.stock == 0:
            title = (
                f"Sold out: {product.name} has no keys left"
                if product.stock == 0
                else f"Low stock: {product.name} has {product.stock} left"
            )
            raised += bool(
                alert_raise(
                    kind=Alert.Kind.LOW_STOCK,
                    subject=subject,
                    title=title,
                    detail=(
                        f"Below its threshold of {product.low_stock_threshold}. "
                        "Import keys for it in the admin."
                    ),
                    count=1,
                    snooze_after_ack=True,
                    now=now,
                )
            )
        else:
            alert_resolve(kind=Alert.Kind.LOW_STOCK, subject=subject, now=now)
        per_day = sold.get(product.pk, 0) / risk.forecast_days
        if 0 < product.stock < per_day:
            raised += bool(
                alert_raise(
                    kind=Alert.Kind.STOCK_FORECAST,
                    subject=subject,
                    title=(
                        f"{product.name} runs out within a day: {product.stock} left, "
                        f"selling {per_day:.1f} a day"
                    ),
                    detail=f"Pace measured over the last {risk.forecast_days} days.",
                    count=1,
                    snooze_after_ack=True,
                    now=now,
                )
            )
        else:
            alert_resolve(kind=Alert.Kind.STOCK_FORECAST, subject=subject, now=now)
    return raised


def alert_check_slow_deliveries(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    threshold_ms = RiskSettings.current().slow_delivery_seconds * 1000
    kind, subject = Alert.Kind.SLOW_DELIVERY, "delivery"
    since = _events_since(kind, subject, now=now, lookback=EVENT_LOOKBACK)
    slow = list(
        Delivery.objects.filter(created_at__gte=since, latency_ms__gt=threshold_ms)
        .select_related("order")
        .order_by("-latency_ms")[:50]
    )
    if not slow:
        return 0
    worst = slow[0].latency_ms or 0
    lines = [f"{d.order.order_no}: {(d.latency_ms or 0) / 1000:.1f} s" for d in slow[:10]]
    return bool(
        alert_raise(
            kind=kind,
            subject=subject,
            count=len(slow),
            title=(
                f"Slow delivery: {len(slow)} order(s) took over {threshold_ms // 1000} s "
                f"from payment to keys (worst {worst / 1000:.1f} s)"
            ),
            detail="\n".join(lines),
            now=now,
        )
    )


def alert_check_risk_spike(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    risk = RiskSettings.current()
    if not risk.spike_holds_blocks:
        return 0
    kind, subject = Alert.Kind.RISK_SPIKE, "checkout"
    window = timedelta(minutes=risk.spike_window_minutes)
    n = holds_and_blocks_since(since=_events_since(kind, subject, now=now, lookback=window))
    if n < risk.spike_holds_blocks:
        return 0
    return bool(
        alert_raise(
            kind=kind,
            subject=subject,
            title=f"Spike: {n} orders held or blocked in the last {risk.spike_window_minutes} min",
            count=n,
            detail="See Risk decisions in the admin for the rules, buyers and networks.",
            now=now,
        )
    )


def alert_check_failed_deliveries(*, now: datetime | None = None) -> int:
    failed = PaymentEvent.objects.filter(processed_at__isnull=True).exclude(last_error="")
    events = list(failed.order_by("received_at")[:10])
    if not events:
        alert_resolve(kind=Alert.Kind.FAILED_DELIVERY, subject="payment-inbox", now=now)
        return 0
    n = failed.count()
    return bool(
        alert_raise(
            kind=Alert.Kind.FAILED_DELIVERY,
            subject="payment-inbox",
            title=f"Failed deliveries: {n} payment event(s) could not be processed",
            detail="\n".join(f"{e.event_id}: {e.last_error[:200]}" for e in events),
            count=n,
            snooze_after_ack=True,
            now=now,
        )
    )


def alert_webhook_signature_failed(*, client_ip: str | None) -> Alert | None:
    return alert_raise(
        kind=Alert.Kind.WEBHOOK_SIGNATURE,
        subject="stripe",
        title="Webhook requests with a missing or bad signature",
        detail=f"Latest from {client_ip or 'an unknown address'}. Nothing was processed.",
    )


def alerts_check(*, now: datetime | None = None) -> int:
    """Every periodic condition at once; returns how many alerts were opened or refreshed."""
    now = now or timezone.now()
    return (
        alert_check_stock(now=now)
        + alert_check_slow_deliveries(now=now)
        + alert_check_risk_spike(now=now)
        + alert_check_failed_deliveries(now=now)
    )
