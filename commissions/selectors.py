"""Reads for promoters: balances, commissions, stats, team, withdrawals.

Every selector takes the caller's own ``promoter_id`` and filters by it first: a promoter's
pages and API answers are built only from here, so one promoter never sees another's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings as django_settings
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from commissions.models import (
    Attribution,
    CommissionSettings,
    LedgerEntry,
    Promoter,
    ReferralClick,
    Withdrawal,
)

K = LedgerEntry.Kind
OPEN_WITHDRAWAL = [Withdrawal.Status.REQUESTED, Withdrawal.Status.APPROVED]


@dataclass(frozen=True)
class Balances:
    pending: int
    available: int
    requested: int
    paid: int


def promoter_balances(*, promoter_id: int, now: datetime | None = None) -> Balances:
    """Pending (on hold), available (withdrawable, may be negative after a clawback), requested
    (withdrawals waiting for payout) and paid — all derived from the ledger entries.

    ``pending``/``available`` are one range scan on ``ledger_balance_idx`` (promoter,
    available_at, amount): index-only, so fast for a promoter with 100,000 entries.
    """
    now = now or timezone.now()
    entries = LedgerEntry.objects.filter(promoter_id=promoter_id)
    sums = entries.aggregate(
        pending=Coalesce(Sum("amount", filter=Q(available_at__gt=now)), 0),
        available=Coalesce(Sum("amount", filter=Q(available_at__lte=now)), 0),
    )
    paid_out = entries.filter(kind=K.WITHDRAWAL).aggregate(
        requested=Coalesce(Sum("amount", filter=Q(withdrawal__status__in=OPEN_WITHDRAWAL)), 0),
        paid=Coalesce(Sum("amount", filter=Q(withdrawal__status=Withdrawal.Status.PAID)), 0),
    )
    return Balances(
        pending=sums["pending"],
        available=sums["available"],
        requested=-paid_out["requested"],
        paid=-paid_out["paid"],
    )


def next_releases(*, promoter_id: int, limit: int = 5) -> list[tuple[date, int]]:
    """When pending money becomes available: ``[(day, amount), …]`` soonest first."""
    rows = (
        LedgerEntry.objects.filter(promoter_id=promoter_id, available_at__gt=timezone.now())
        .annotate(day=TruncDate("available_at"))
        .values("day")
        .annotate(total=Sum("amount"))
        .order_by("day")[:limit]
    )
    return [(row["day"], row["total"]) for row in rows if row["total"]]


def enabled_payout_methods(conf: CommissionSettings) -> list[str]:
    valid = [value for value, _ in Withdrawal.Method.choices]
    chosen = [m for m in (conf.payout_methods or []) if m in valid]
    return chosen or valid


def referral_link(promoter: Promoter) -> str:
    return f"{django_settings.SITE_URL}/?ref={promoter.code}"


@dataclass(frozen=True)
class Stats:
    clicks: int
    orders: int
    conversion: float  # orders per click, 0..1 (can exceed 1 with API orders)
    team_size: int


def promoter_stats(*, promoter_id: int) -> Stats:
    clicks = ReferralClick.objects.filter(promoter_id=promoter_id).count()
    # An order counts once it is paid: checkouts left unpaid are not conversions.
    orders = Attribution.objects.filter(
        promoter_id=promoter_id,
        status=Attribution.Status.ATTRIBUTED,
        order__paid_at__isnull=False,
    ).count()
    team = Promoter.objects.filter(upline_id=promoter_id).count()
    return Stats(
        clicks=clicks,
        orders=orders,
        conversion=(orders / clicks) if clicks else 0.0,
        team_size=team,
    )


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@e***.com``: enough to recognise, not to contact."""
    local, sep, domain = (email or "").partition("@")
    if not sep:
        return "***"
    name, dot, tld = domain.rpartition(".")
    masked_domain = f"{name[:1]}***{dot}{tld}" if dot else f"{domain[:1]}***"
    return f"{local[:1]}***@{masked_domain}"


@dataclass(frozen=True)
class CommissionRow:
    order_no: str
    buyer: str  # masked
    level: int
    amount: int
    clawed_back: int
    currency: str
    status: str  # pending | available | partly_clawed_back | clawed_back
    available_at: datetime
    created_at: datetime


def commission_status(*, amount: int, clawed_back: int, available_at: datetime, now) -> str:
    if clawed_back >= amount:
        return "clawed_back"
    if clawed_back:
        return "partly_clawed_back"
    return "pending" if available_at > now else "available"


def promoter_commissions(
    *, promoter_id: int, limit: int = 50, offset: int = 0
) -> list[CommissionRow]:
    """The promoter's commission entries, newest first, with what was clawed back of each."""
    clawed = (
        LedgerEntry.objects.filter(
            promoter_id=promoter_id,
            kind=K.CLAWBACK,
            order_id=OuterRef("order_id"),
            level=OuterRef("level"),
        )
        .values("order_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        LedgerEntry.objects.filter(promoter_id=promoter_id, kind=K.COMMISSION)
        .annotate(clawed=Coalesce(Subquery(clawed), 0))
        .values(
            "order__order_no",
            "order__email",
            "level",
            "amount",
            "clawed",
            "currency",
            "available_at",
            "created_at",
        )
        .order_by("-created_at", "-id")[offset : offset + limit]
    )
    now = timezone.now()
    return [
        CommissionRow(
            order_no=row["order__order_no"],
            buyer=mask_email(row["order__email"]),
            level=row["level"],
            amount=row["amount"],
            clawed_back=-row["clawed"],
            currency=row["currency"],
            status=commission_status(
                amount=row["amount"],
                clawed_back=-row["clawed"],
                available_at=row["available_at"],
                now=now,
            ),
            available_at=row["available_at"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


def earnings_by_day(*, promoter_id: int, days: int = 30) -> list[tuple[date, int]]:
    """Net commission (earned minus clawed back) per day for the last ``days`` days, every
    day present (zeros included) so the chart has no gaps."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        LedgerEntry.objects.filter(
            promoter_id=promoter_id,
            kind__in=[K.COMMISSION, K.CLAWBACK],
            created_at__date__gte=start,
        )
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(total=Sum("amount"))
    )
    by_day = {row["day"]: row["total"] for row in rows}
    return [
        (start + timedelta(days=i), by_day.get(start + timedelta(days=i), 0)) for i in range(days)
    ]


@dataclass(frozen=True)
class TeamMember:
    code: str
    joined: datetime
    status: str
    earned_you: int


def promoter_team(*, promoter_id: int) -> list[TeamMember]:
    """Level-2 promoters (recruited by this one) and the team reward each brought them."""
    reward = (
        LedgerEntry.objects.filter(
            promoter_id=promoter_id,
            level=2,
            kind__in=[K.COMMISSION, K.CLAWBACK],
            order__attribution__promoter_id=OuterRef("pk"),
        )
        .values("promoter_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    members = (
        Promoter.objects.filter(upline_id=promoter_id)
        .annotate(earned=Coalesce(Subquery(reward), 0))
        .order_by("-created_at")
    )
    return [
        TeamMember(code=m.code, joined=m.created_at, status=m.status, earned_you=m.earned)
        for m in members
    ]


def promoter_withdrawals(*, promoter_id: int, limit: int = 50) -> list[Withdrawal]:
    return list(Withdrawal.objects.filter(promoter_id=promoter_id)[:limit])


def promoter_withdrawal(*, promoter_id: int, withdrawal_id: int) -> Withdrawal | None:
    """One withdrawal, only if it is this promoter's (else ``None``: same as unknown)."""
    return Withdrawal.objects.filter(promoter_id=promoter_id, pk=withdrawal_id).first()


def duplicate_account_keys() -> set[str]:
    """Payout accounts named by more than one promoter: the owner should look twice."""
    return set(
        Withdrawal.objects.values("account_key")
        .annotate(promoters=Count("promoter", distinct=True))
        .filter(promoters__gt=1)
        .values_list("account_key", flat=True)
    )
