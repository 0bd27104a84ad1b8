"""Writes for promoters, the commission ledger and withdrawals (API tokens: ``api_tokens``).

Ledger rules: entries are only ever *added* (corrections are new entries); posting and
clawbacks run inside the caller's order transaction, after the order lock (lock order:
payment event → order → product → card keys → ledger); a withdrawal locks its promoter so
two requests cannot both spend the same available balance.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commissions.attribution import promoter_by_code
from commissions.locks import lock_attribution, lock_promoters, lock_withdrawals
from commissions.models import (
    Attribution,
    CommissionSettings,
    LedgerEntry,
    Promoter,
    Withdrawal,
)
from commissions.rates import product_rules_for, rate_resolve
from commissions.selectors import enabled_payout_methods, promoter_balances
from core.errors import InvalidInput, KamiError
from shop.audit import audit_record, plain
from shop.models import AuditEntry

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand
CODE_LENGTH = 6


class NotAllowed(KamiError):
    status = 403
    code = "forbidden"


# --- Posting and clawbacks (called by orders inside its order transactions) ----------------


@dataclass(frozen=True)
class CommissionPosting:
    """What posting an order's commissions did: the entries written, or why none were.

    ``skipped`` is a sentence for the order's history when the order earned nothing on
    purpose (sold in another currency); orders records it, commissions writes no order rows.
    """

    entries: list[LedgerEntry] = field(default_factory=list)
    skipped: str = ""


def _paid_total(order) -> int:
    """The money the buyer actually paid, which commissions and refunds are measured against."""
    if order.paid_amount is not None and (order.paid_currency or order.currency) == order.currency:
        return min(order.paid_amount, order.amount)
    return order.amount


def commissions_post_for_order(*, order) -> CommissionPosting:
    """Post the level-1 and level-2 commissions of a just-delivered ``order``.

    Runs in the delivery transaction: if it raises, the delivery rolls back with it. Posting
    twice is impossible (``posted_at`` here, a unique constraint per order and level below).
    """
    attribution = lock_attribution(order.pk)
    if attribution is None or attribution.status != Attribution.Status.ATTRIBUTED:
        return CommissionPosting()
    if attribution.posted_at is not None:
        return CommissionPosting()
    conf = CommissionSettings.load()
    now = timezone.now()
    if order.currency != conf.currency:
        # Balances and withdrawals are kept in one currency; adding yen to dollars would pay
        # promoters fiction. Such orders earn nothing, visibly (the caller notes it on the
        # order), until rates per currency exist.
        attribution.posted_at = now
        attribution.save(update_fields=["posted_at"])
        return CommissionPosting(
            skipped=f"Sold in {order.currency}; commissions are paid in {conf.currency} only."
        )
    available_at = (order.delivered_at or now) + timedelta(days=conf.hold_days)
    base = _paid_total(order)
    earners = [
        (level, earner)
        for level, earner in ((1, attribution.promoter), (2, attribution.upline))
        if earner is not None and earner.status == Promoter.Status.ACTIVE
    ]
    product_rules = product_rules_for(
        product_id=order.product_id, earner_ids=[earner.pk for _, earner in earners]
    )
    entries = []
    for level, earner in earners:
        rate = rate_resolve(
            earner=earner,
            product_id=order.product_id,
            level=level,
            settings=conf,
            product_rules=product_rules,
        )
        amount = rate.amount_for(base=base, quantity=order.quantity)
        if amount <= 0:
            continue
        entries.append(
            LedgerEntry(
                promoter=earner,
                kind=LedgerEntry.Kind.COMMISSION,
                amount=amount,
                currency=order.currency,
                order=order,
                level=level,
                available_at=available_at,
                reason=f"rate: {rate.source}",
            )
        )
    entries = LedgerEntry.objects.bulk_create(entries)
    attribution.posted_at = now
    Attribution.objects.filter(pk=attribution.pk).update(posted_at=now)
    # Money refunded before delivery (e.g. while backordered) is clawed back at once.
    _clawback_to_target(order=order, attribution=attribution)
    return CommissionPosting(entries=entries)


def commissions_clawback_for_order(*, order, amount: int) -> list[LedgerEntry]:
    """Claw back commissions for ``amount`` newly refunded or disputed on ``order``.

    The clawback is computed from the order's state, not summed call by call: the money lost
    is the larger of "refunded" and "refunded before the dispute + disputed" (a refund after a
    dispute is taken to return the disputed money first), so a dispute followed by a refund of
    the same money claws back once, and the total never exceeds what was earned.
    """
    attribution = lock_attribution(order.pk)
    if attribution is None or amount <= 0:
        return []
    if order.refunded_amount > attribution.refunded_seen:
        # The refund path records ``refunded_amount`` before calling this.
        attribution.refunded_seen = order.refunded_amount
    else:
        if attribution.disputed_total == 0:
            attribution.refunded_before_dispute = attribution.refunded_seen
        attribution.disputed_total += amount
    attribution.save(update_fields=["refunded_seen", "disputed_total", "refunded_before_dispute"])
    return _clawback_to_target(order=order, attribution=attribution)


def money_lost(*, order, attribution: Attribution) -> int:
    paid = _paid_total(order)
    lost = max(
        attribution.refunded_seen,
        attribution.refunded_before_dispute + attribution.disputed_total,
    )
    return max(0, min(paid, lost))


def clawback_target(*, earned: int, lost: int, paid: int) -> int:
    """The total clawback due on ``earned`` when ``lost`` of ``paid`` is gone (half up)."""
    if paid <= 0 or lost >= paid:
        return earned
    share = (Decimal(earned) * lost / paid).quantize(Decimal(1), ROUND_HALF_UP)
    return min(earned, int(share))


def _clawback_to_target(*, order, attribution: Attribution) -> list[LedgerEntry]:
    lost = money_lost(order=order, attribution=attribution)
    if lost <= 0:
        return []
    paid = _paid_total(order)
    now = timezone.now()
    posted = []
    commissions = LedgerEntry.objects.filter(
        order=order, kind=LedgerEntry.Kind.COMMISSION
    ).order_by("level")
    for commission in commissions:
        already = -(
            LedgerEntry.objects.filter(
                order=order, level=commission.level, kind=LedgerEntry.Kind.CLAWBACK
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        due = clawback_target(earned=commission.amount, lost=lost, paid=paid) - already
        if due <= 0:
            continue
        posted.append(
            LedgerEntry.objects.create(
                promoter_id=commission.promoter_id,
                kind=LedgerEntry.Kind.CLAWBACK,
                amount=-due,
                currency=commission.currency,
                order=order,
                level=commission.level,
                # A clawback of a commission still on hold reduces the pending balance.
                available_at=max(now, commission.available_at),
                reason=f"{lost} of {paid} refunded or disputed",
            )
        )
    return posted


def ledger_adjust(*, promoter: Promoter, amount: int, reason: str, actor=None) -> LedgerEntry:
    """A manual correction by the owner: always a new entry, always with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("An adjustment needs a reason.")
    if amount == 0:
        raise InvalidInput("An adjustment of zero changes nothing.")
    return LedgerEntry.objects.create(
        promoter=promoter,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        currency=CommissionSettings.load().currency,
        available_at=timezone.now(),
        reason=reason[:300],
        created_by=actor if getattr(actor, "pk", None) else None,
    )


# --- Withdrawals ------------------------------------------------------------------------------


def account_key(method: str, account: str) -> str:
    """``PayPal``, `` Foo@X.com `` → ``paypal:foo@x.com``: spaces and dashes do not hide a
    duplicate account."""
    compact = re.sub(r"[\s-]+", "", account.lower())
    return f"{method}:{compact}"[:220]


def withdrawal_request(*, promoter: Promoter, amount: int, method: str, account: str) -> Withdrawal:
    """Ask for ``amount`` of the available balance to be paid out; the money leaves the
    available balance now and returns if the owner rejects the request."""
    conf = CommissionSettings.load()
    account = (account or "").strip()
    if method not in enabled_payout_methods(conf):
        raise InvalidInput(_("Choose one of the payout methods the shop offers."))
    if not account or len(account) > 200:
        raise InvalidInput(_("Enter the payout account (at most 200 characters)."))
    if amount < conf.min_withdrawal:
        raise InvalidInput(_("The amount is below the minimum withdrawal."), code="below_minimum")
    with transaction.atomic():
        locked = lock_promoters(promoter.pk)[promoter.pk]
        if locked.status != Promoter.Status.ACTIVE:
            raise NotAllowed(_("Only active promoters can withdraw."))
        available = promoter_balances(promoter_id=promoter.pk).available
        if amount > available:
            raise InvalidInput(
                _("The amount is more than your available balance."), code="insufficient_balance"
            )
        withdrawal = Withdrawal.objects.create(
            promoter=promoter,
            amount=amount,
            currency=conf.currency,
            method=method,
            account=account,
            account_key=account_key(method, account),
        )
        LedgerEntry.objects.create(
            promoter=promoter,
            kind=LedgerEntry.Kind.WITHDRAWAL,
            amount=-amount,
            currency=conf.currency,
            withdrawal=withdrawal,
            available_at=timezone.now(),
        )
    return withdrawal


W = Withdrawal.Status
WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    W.APPROVED: frozenset({W.REQUESTED}),
    W.REJECTED: frozenset({W.REQUESTED, W.APPROVED}),
    W.PAID: frozenset({W.REQUESTED, W.APPROVED}),
}


def _withdrawals_move(*, withdrawal_ids: list[int], to_status: str, actor, **fields) -> list:
    moved = []
    now = timezone.now()
    for withdrawal in lock_withdrawals(withdrawal_ids):
        if withdrawal.status not in WITHDRAWAL_TRANSITIONS[to_status]:
            continue
        updated = Withdrawal.objects.filter(pk=withdrawal.pk, status=withdrawal.status).update(
            status=to_status,
            decided_at=now,
            decided_by=actor if getattr(actor, "pk", None) else None,
            **fields,
        )
        if updated:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                obj=withdrawal,
                changes={
                    "status": [withdrawal.status, to_status],
                    **{
                        name: [plain(getattr(withdrawal, name)), plain(value)]
                        for name, value in fields.items()
                    },
                },
                actor=actor,
            )
            withdrawal.status = to_status
            moved.append(withdrawal)
    return moved


def withdrawals_approve(*, withdrawal_ids: list[int], actor=None) -> int:
    with transaction.atomic():
        return len(
            _withdrawals_move(withdrawal_ids=withdrawal_ids, to_status=W.APPROVED, actor=actor)
        )


def withdrawals_reject(*, withdrawal_ids: list[int], reason: str, actor=None) -> int:
    """Reject with a reason; each rejected withdrawal's money returns by a reversal entry."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the withdrawal is rejected: the promoter sees it.")
    with transaction.atomic():
        moved = _withdrawals_move(
            withdrawal_ids=withdrawal_ids, to_status=W.REJECTED, actor=actor, reason=reason
        )
        for withdrawal in moved:
            LedgerEntry.objects.create(
                promoter_id=withdrawal.promoter_id,
                kind=LedgerEntry.Kind.WITHDRAWAL_REVERSAL,
                amount=withdrawal.amount,
                currency=withdrawal.currency,
                withdrawal=withdrawal,
                available_at=timezone.now(),
                reason=reason[:300],
            )
        return len(moved)


def withdrawals_mark_paid(*, withdrawal_ids: list[int], reference: str, actor=None) -> int:
    reference = (reference or "").strip()
    if not reference:
        raise InvalidInput("Enter the payout reference (transaction id).")
    with transaction.atomic():
        moved = _withdrawals_move(
            withdrawal_ids=withdrawal_ids,
            to_status=W.PAID,
            actor=actor,
            reference=reference[:200],
            paid_at=timezone.now(),
        )
        return len(moved)


# --- Promoters ----------------------------------------------------------------------------------


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


def promoter_create(*, user, upline_code: str = "", code: str = "") -> Promoter:
    """Make ``user`` a promoter. Joining is free and earns nobody anything: only sales pay."""
    if Promoter.objects.filter(user=user).exists():
        raise InvalidInput(_("You are already a promoter."), code="already_promoter")
    conf = CommissionSettings.load()
    upline = promoter_by_code(upline_code) if upline_code else None
    if upline is not None and (
        upline.status != Promoter.Status.ACTIVE or upline.user_id == user.pk
    ):
        upline = None
    status = Promoter.Status.PENDING if conf.approval_required else Promoter.Status.ACTIVE
    for _attempt in range(8):
        try:
            with transaction.atomic():
                return Promoter.objects.create(
                    user=user, code=(code or _new_code()).upper(), upline=upline, status=status
                )
        except IntegrityError:
            if code:
                raise InvalidInput(_("That code is taken."), code="code_taken") from None
    raise RuntimeError("could not find a free promoter code")


def promoter_sign_up(
    *, username: str, email: str, password: str, upline_code: str = ""
) -> Promoter:
    """Create an account and its promoter in one go (the ``/promoter/join`` form)."""
    User = get_user_model()
    username = (username or "").strip()
    email = (email or "").strip().lower()
    if not re.fullmatch(r"[\w.@+-]{3,150}", username):
        raise InvalidInput(_("Choose a username of 3 to 150 letters, digits or .@+-_ characters."))
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid email address.")) from None
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise InvalidInput(_("That username is taken."), code="username_taken")
        user = User.objects.create_user(username=username, email=email, password=password)
        return promoter_create(user=user, upline_code=upline_code)


def promoters_approve(*, promoter_ids: list[int]) -> int:
    return Promoter.objects.filter(pk__in=promoter_ids, status=Promoter.Status.PENDING).update(
        status=Promoter.Status.ACTIVE
    )
