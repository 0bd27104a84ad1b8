"""Attribution: clicks on referral links, and freezing who referred an order at checkout.

Writes (services) for the attribution noun: ``click_record``, ``sighting_record`` and
``order_attribute``. Self-referral earns nothing — the promoter's own account, their email
(normalised: case, ``+tags``, Gmail dots) or an IP they used within the attribution window —
and every refusal is recorded on the order's ``Attribution`` row.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from commissions.models import (
    Attribution,
    CommissionSettings,
    Promoter,
    PromoterSighting,
    ReferralClick,
)
from core.identity import email_identity


def ip_hash(ip: str | None) -> str:
    """A keyed hash of an IP: comparable, but not reversible into the address."""
    if not ip:
        return ""
    key = hashlib.sha256(f"kami.ip-hash:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()


def promoter_by_code(code: str) -> Promoter | None:
    code = (code or "").strip().upper()
    if not code:
        return None
    return Promoter.objects.select_related("user", "upline__user").filter(code=code).first()


def click_record(
    *,
    promoter: Promoter,
    landing_path: str,
    referrer: str = "",
    client_ip: str | None = None,
    user_agent: str = "",
) -> None:
    ReferralClick.objects.create(
        promoter=promoter,
        landing_path=landing_path[:400],
        referrer=referrer[:400],
        ip_hash=ip_hash(client_ip),
        user_agent=user_agent[:400],
    )


def sighting_record(*, promoter_id: int, client_ip: str | None) -> None:
    """Remember that the promoter used this IP now (for the same-IP self-referral check)."""
    hashed = ip_hash(client_ip)
    if hashed:
        PromoterSighting.objects.update_or_create(
            promoter_id=promoter_id, ip_hash=hashed, defaults={"last_seen": timezone.now()}
        )


def _self_referral(*, order, promoter: Promoter, window_days: int) -> str:
    """The reason ``order`` counts as ``promoter`` buying for themselves, or ``""``."""
    if order.buyer_user_id and order.buyer_user_id == promoter.user_id:
        return Attribution.Refusal.OWN_ACCOUNT
    if promoter.user.email and email_identity(order.email) == email_identity(promoter.user.email):
        return Attribution.Refusal.OWN_EMAIL
    hashed = ip_hash(order.client_ip)
    if (
        hashed
        and PromoterSighting.objects.filter(
            promoter=promoter,
            ip_hash=hashed,
            last_seen__gte=timezone.now() - timedelta(days=window_days),
        ).exists()
    ):
        return Attribution.Refusal.SAME_IP
    return ""


def order_attribute(*, order) -> Attribution | None:
    """Freeze the order's promoter and upline at checkout (in the checkout transaction)."""
    code = (order.ref_code or "").strip().upper()
    if not code:
        return None
    conf = CommissionSettings.load()
    promoter = promoter_by_code(code)
    if promoter is None or promoter.status != Promoter.Status.ACTIVE:
        return Attribution.objects.create(
            order=order, ref_code=code, status=Attribution.Status.UNKNOWN
        )
    refusal = _self_referral(
        order=order, promoter=promoter, window_days=conf.attribution_window_days
    )
    if refusal:
        return Attribution.objects.create(
            order=order,
            ref_code=code,
            status=Attribution.Status.REFUSED,
            promoter=promoter,
            refusal=refusal,
        )
    upline = promoter.upline
    upline_refusal = ""
    if upline is not None and upline.status != Promoter.Status.ACTIVE:
        upline = None
    elif upline is not None:
        upline_refusal = _self_referral(
            order=order, promoter=upline, window_days=conf.attribution_window_days
        )
        if upline_refusal:
            upline = None
    return Attribution.objects.create(
        order=order,
        ref_code=code,
        status=Attribution.Status.ATTRIBUTED,
        promoter=promoter,
        upline=upline,
        upline_refusal=upline_refusal,
    )
