"""Promoter API: Bearer tokens, and the caller's own balances and commissions (contract §4).

Thin: authenticate, call a selector with the caller's own promoter id, shape the answer. There
is no way to name another promoter here, so there is nothing of theirs to read.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.security import HttpBearer

from commissions.api_tokens import api_token_create, api_token_user
from commissions.models import CommissionSettings, Promoter
from commissions.selectors import (
    promoter_balances,
    promoter_commissions,
    promoter_stats,
    referral_link,
)
from commissions.services import NotAllowed
from core.errors import ErrorOut, KamiError, RateLimited
from core.lockout import LOCKED_MESSAGE, LoginLocked, login_attempt
from core.money import to_decimal_string

router = Router(tags=["promoters"])


class Unauthorized(KamiError):
    status = 401
    code = "unauthorized"


class BearerToken(HttpBearer):
    """``Authorization: Bearer kami_…``: a live token of an active user (``api_tokens``)."""

    def authenticate(self, request: HttpRequest, token: str):
        return api_token_user(token)


class TokenIn(Schema):
    username: str = Field(..., max_length=150)
    password: str = Field(..., max_length=256)


class TokenOut(Schema):
    token: str


class BalancesOut(Schema):
    pending: str
    available: str
    requested: str
    paid: str


class MeOut(Schema):
    code: str
    link: str
    balances: BalancesOut
    clicks: int
    orders: int
    team_size: int


class CommissionOut(Schema):
    order_no: str
    level: int
    amount: str
    status: str
    available_at: datetime


class Page(Schema):
    limit: int = Field(100, ge=1, le=500)
    # Bounded: an offset past PostgreSQL's bigint failed the query (500) instead of a 422.
    offset: int = Field(0, ge=0, le=1_000_000)


@router.post("/auth/token", response={200: TokenOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut})
def create_token(request: HttpRequest, payload: TokenIn):
    """Exchange a username and password for a Bearer token (shown once; keep it secret). It
    expires after 30 days (``API_TOKEN_TTL_DAYS``) and on a password change. Failed logins
    count toward the same lockout as the login pages: ``429`` with ``Retry-After`` while the
    username or the client address is locked, even for the right password."""
    try:
        with login_attempt(request, payload.username):
            user = authenticate(request, username=payload.username, password=payload.password)
    except LoginLocked as locked:
        raise RateLimited(LOCKED_MESSAGE, retry_after=locked.retry_after) from None
    if user is None or not user.is_active:
        raise Unauthorized("Wrong username or password.")
    return {"token": api_token_create(user=user)}


def _promoter_of(request: HttpRequest) -> Promoter:
    promoter = Promoter.objects.filter(user=request.auth).first()
    if promoter is None:
        raise NotAllowed("This account is not a promoter.")
    return promoter


@router.get("/promoter/me", auth=BearerToken(), response={200: MeOut, 401: ErrorOut, 403: ErrorOut})
def promoter_me(request: HttpRequest):
    """The caller's code, link, balances (decimal strings) and counts."""
    promoter = _promoter_of(request)
    currency = CommissionSettings.load().currency
    balances = promoter_balances(promoter_id=promoter.pk)
    stats = promoter_stats(promoter_id=promoter.pk)
    return {
        "code": promoter.code,
        "link": referral_link(promoter),
        "balances": {
            name: to_decimal_string(getattr(balances, name), currency)
            for name in ("pending", "available", "requested", "paid")
        },
        "clicks": stats.clicks,
        "orders": stats.orders,
        "team_size": stats.team_size,
    }


@router.get(
    "/promoter/commissions",
    auth=BearerToken(),
    response={200: list[CommissionOut], 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
)
def promoter_commission_list(request: HttpRequest, page: Query[Page]):
    """The caller's commissions, newest first (``limit``/``offset`` to page through)."""
    promoter = _promoter_of(request)
    rows = promoter_commissions(promoter_id=promoter.pk, limit=page.limit, offset=page.offset)
    return [
        {
            "order_no": row.order_no,
            "level": row.level,
            "amount": to_decimal_string(row.amount, row.currency),
            "status": row.status,
            "available_at": row.available_at,
        }
        for row in rows
    ]
