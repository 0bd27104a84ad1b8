"""Risk-control tasks. Thin on purpose: each calls one service."""

from __future__ import annotations

from celery import shared_task

from riskrules.alerts import (
    alert_check_risk_spike,
    alert_check_stock,
    alert_email_send,
    alerts_check,
)


@shared_task
def check_alerts() -> int:
    """Periodic: every alert condition (see ``CELERY_BEAT_SCHEDULE``)."""
    return alerts_check()


@shared_task
def check_stock_alerts(product_id: int) -> int:
    """Direct trigger after a checkout took stock from ``product_id``."""
    return alert_check_stock(product_ids=[product_id])


@shared_task
def check_risk_spike() -> int:
    return alert_check_risk_spike()


@shared_task(autoretry_for=(Exception,), retry_backoff=30, max_retries=5, acks_late=True)
def send_alert_email(alert_id: int) -> bool:
    return alert_email_send(alert_id=alert_id)
