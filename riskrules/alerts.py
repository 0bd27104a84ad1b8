"""Alerts: conditions the owner should hear about, in the admin and by email.

One open alert per condition (``kind`` + ``subject``, a partial unique constraint): a condition
seen again updates its alert instead of adding one. Email goes to ``ShopSettings.owner_email``
when the alert opens and then at most once per interval (an hour by default) while it stays
unacknowledged; the interval is claimed by a conditional UPDATE, so two workers checking at
once still send one email. The email is an outbox row written with that claim
(``orders.outbox``): a broker outage delays it, never loses it.

After the owner acknowledges, *event* conditions (slow deliveries, spikes, signature failures)
only count what happened since the acknowledgement, and *state* conditions (low stock, the
forecast, failed deliveries still failing) stay quiet for one interval before they may reopen:
acknowledging means "I know", not "tell me again in a minute".

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
    snooze_after_ack: bool = False,
    now: datetime | None = None,
) -> Alert | None:
    """Open or refresh the alert for this condition; email it if its interval allows."""
    now = now or timezone.now()
    risk = RiskSettings.current()
    interval = _interval(risk)
    if snooze_after_ack:
        acknowledged = _last_acknowledged(kind, subject)
        if acknowledged and acknowledged > now - interval:
            return None
    with transaction.atomic():
        open_alerts = Alert.objects.select_for_update().filter(
            kind=kind, subject=subject, acknowledged_at__isnull=True
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
                        first_seen_at=now,
                        last_seen_at=now,
                    )
            except IntegrityError:  # another worker opened it first: refresh theirs
                alert = open_alerts.first()
        else:
            Alert.objects.filter(pk=alert.pk).update(
                title=title[:200], detail=detail, count=F("count") + 1, last_seen_at=now
            )
        if alert is None:
            return None
        due = Q(last_emailed_at__isnull=True) | Q(last_emailed_at__lte=now - interval)
        if Alert.objects.filter(pk=alert.pk).filter(due).update(last_emailed_at=now):
            alert.refresh_from_db()
            alert_email_enqueue(alert=alert)
    alert.refresh_from_db()
    return alert


def alert_acknowledge(*, alert_ids: list[int], user) -> int:
    """Acknowledge open alerts (who and when); returns how many were open."""
    return Alert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None
    )


def alert_email_enqueue(*, alert: Alert) -> str | None:
    """The owner's email for this sending of ``alert`` (its ``last_emailed_at``), as an outbox
    row of the caller's transaction: it goes out after the commit, retried until sent."""
    shop = ShopSettings.load()
    if not shop.owner_email:
        logger.warning("alert %s not emailed: no owner email in the shop settings", alert.title)
        return None
    sent_for = alert.last_emailed_at or timezone.now()
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
        alert = Alert.objects.filter(pk=alert_id, acknowledged_at__isnull=True).first()
        return alert is not None and alert_email_enqueue(alert=alert) is not None


# --- Conditions --------------------------------------------------------------------------------


def alert_check_stock(*, now: datetime | None = None, product_ids: list[int] | None = None) -> int:
    """Low stock (below the product's threshold) and the forecast (under a day of sales left
    at the pace of the last ``forecast_days`` days)."""
    now = now or timezone.now()
    risk = RiskSettings.current()
    products = Product.objects.filter(on_sale=True)
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    sold = units_sold_since(since=now - timedelta(days=risk.forecast_days))
    raised = 0
    for product in with_stock(products, now=now):
        subject = f"product:{product.pk}"
        if product.stock < product.low_stock_threshold:
            raised += bool(
                alert_raise(
                    kind=Alert.Kind.LOW_STOCK,
                    subject=subject,
                    title=f"Low stock: {product.name} has {product.stock} left",
                    detail=(
                        f"Below its threshold of {product.low_stock_threshold}. "
                        "Import keys for it in the admin."
                    ),
                    snooze_after_ack=True,
                    now=now,
                )
            )
        per_day = sold.get(product.pk, 0) / risk.forecast_days
        if per_day > 0 and product.stock < per_day:
            raised += bool(
                alert_raise(
                    kind=Alert.Kind.STOCK_FORECAST,
                    subject=subject,
                    title=(
                        f"{product.name} runs out within a day: {product.stock} left, "
                        f"selling {per_day:.1f} a day"
                    ),
                    detail=f"Pace measured over the last {risk.forecast_days} days.",
                    snooze_after_ack=True,
                    now=now,
                )
            )
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
            detail="See Risk decisions in the admin for the rules, buyers and networks.",
            now=now,
        )
    )


def alert_check_failed_deliveries(*, now: datetime | None = None) -> int:
    failed = PaymentEvent.objects.filter(processed_at__isnull=True).exclude(last_error="")
    events = list(failed.order_by("received_at")[:10])
    if not events:
        return 0
    n = failed.count()
    return bool(
        alert_raise(
            kind=Alert.Kind.FAILED_DELIVERY,
            subject="payment-inbox",
            title=f"Failed deliveries: {n} payment event(s) could not be processed",
            detail="\n".join(f"{e.event_id}: {e.last_error[:200]}" for e in events),
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
