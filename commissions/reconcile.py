"""Ledger invariants, checked from scratch (``manage.py reconcile_ledger``).

Each check recomputes a fact independently of the code that wrote it and returns the
differences as readable lines; an empty list means the ledger is consistent.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from commissions.models import Attribution, LedgerEntry, Promoter, Withdrawal
from commissions.selectors import promoter_balances
from commissions.services import _paid_total, clawback_target, money_lost

K = LedgerEntry.Kind
W = Withdrawal.Status


def _sums_by_promoter(now) -> list[str]:
    """The SQL-derived balances equal a plain walk over every entry, and the four balances
    add up to everything earned (commissions, clawbacks, adjustments)."""
    problems = []
    walk: dict[int, dict[str, int]] = defaultdict(
        lambda: {"pending": 0, "available": 0, "requested": 0, "paid": 0, "earned": 0}
    )
    entries = LedgerEntry.objects.select_related("withdrawal").order_by("pk")
    for e in entries.iterator(chunk_size=5000):
        acc = walk[e.promoter_id]
        acc["pending" if e.available_at > now else "available"] += e.amount
        if e.kind in (K.COMMISSION, K.CLAWBACK, K.ADJUSTMENT):
            acc["earned"] += e.amount
        if e.kind == K.WITHDRAWAL and e.withdrawal.status in (W.REQUESTED, W.APPROVED):
            acc["requested"] -= e.amount
        if e.kind == K.WITHDRAWAL and e.withdrawal.status == W.PAID:
            acc["paid"] -= e.amount
    for promoter in Promoter.objects.filter(pk__in=list(walk)).order_by("pk"):
        acc = walk[promoter.pk]
        b = promoter_balances(promoter_id=promoter.pk, now=now)
        derived = {
            "pending": b.pending,
            "available": b.available,
            "requested": b.requested,
            "paid": b.paid,
        }
        for name, value in derived.items():
            if value != acc[name]:
                problems.append(f"promoter {promoter.code}: {name} {value} != walked {acc[name]}")
        total = b.pending + b.available + b.requested + b.paid
        if total != acc["earned"]:
            problems.append(
                f"promoter {promoter.code}: balances add up to {total}, earned {acc['earned']}"
            )
    return problems


def _entries_vs_orders() -> list[str]:
    problems = []
    attributions = {
        a.order_id: a
        for a in Attribution.objects.filter(
            Q(posted_at__isnull=False) | Q(order__delivered_at__isnull=False)
        ).select_related("order")
    }
    by_order: dict[int, list[LedgerEntry]] = defaultdict(list)
    for e in LedgerEntry.objects.filter(kind__in=[K.COMMISSION, K.CLAWBACK]).order_by("pk"):
        by_order[e.order_id].append(e)
    for order_id, entries in by_order.items():
        a = attributions.get(order_id)
        if a is None or a.status != Attribution.Status.ATTRIBUTED or a.posted_at is None:
            problems.append(f"order {order_id}: ledger entries but no posted attribution")
            continue
        order = a.order
        if order.delivered_at is None:
            problems.append(f"order {order.order_no}: commissions but never delivered")
        earners = {1: a.promoter_id, 2: a.upline_id}
        for level in (1, 2):
            at_level = [e for e in entries if e.level == level]
            commissions = [e for e in at_level if e.kind == K.COMMISSION]
            clawed = -sum(e.amount for e in at_level if e.kind == K.CLAWBACK)
            wrong = [e.pk for e in at_level if e.promoter_id != earners[level]]
            if wrong:
                problems.append(
                    f"order {order.order_no} L{level}: entries {wrong} for wrong promoter"
                )
            earned = sum(e.amount for e in commissions)
            if clawed and not commissions:
                problems.append(f"order {order.order_no} L{level}: clawback without commission")
            if earned > _paid_total(order):
                problems.append(f"order {order.order_no} L{level}: commission exceeds the order")
            if clawed > earned:
                problems.append(
                    f"order {order.order_no} L{level}: clawed back {clawed} > earned {earned}"
                )
            elif commissions:
                due = clawback_target(
                    earned=earned,
                    lost=money_lost(order=order, attribution=a),
                    paid=_paid_total(order),
                )
                if clawed != due:
                    problems.append(
                        f"order {order.order_no} L{level}: clawed back {clawed}, due {due}"
                    )
    for a in attributions.values():
        if a.status == Attribution.Status.ATTRIBUTED and a.order.delivered_at and not a.posted_at:
            problems.append(f"order {a.order.order_no}: delivered but commissions never posted")
    return problems


def _withdrawals() -> list[str]:
    problems = []
    rows = Withdrawal.objects.annotate(
        taken=Sum("entries__amount", filter=Q(entries__kind=K.WITHDRAWAL)),
        returned=Sum("entries__amount", filter=Q(entries__kind=K.WITHDRAWAL_REVERSAL)),
        wrong_promoter=Count("entries", filter=~Q(entries__promoter_id=F("promoter_id"))),
    )
    for w in rows:
        if (w.taken or 0) != -w.amount:
            problems.append(f"withdrawal {w.pk}: ledger took {-(w.taken or 0)}, amount {w.amount}")
        expected_back = w.amount if w.status == W.REJECTED else 0
        if (w.returned or 0) != expected_back:
            problems.append(
                f"withdrawal {w.pk} ({w.status}): returned {w.returned or 0}, due {expected_back}"
            )
        if w.wrong_promoter:
            problems.append(f"withdrawal {w.pk}: entries on another promoter's ledger")
    return problems


def _orphans() -> list[str]:
    problems = []
    orphan_w = LedgerEntry.objects.filter(
        kind__in=[K.WITHDRAWAL, K.WITHDRAWAL_REVERSAL], withdrawal__isnull=True
    ).count()
    if orphan_w:
        problems.append(f"{orphan_w} withdrawal entries without a withdrawal")
    stray = LedgerEntry.objects.filter(
        Q(kind__in=[K.ADJUSTMENT, K.WITHDRAWAL, K.WITHDRAWAL_REVERSAL], order__isnull=False)
        | Q(kind__in=[K.COMMISSION, K.CLAWBACK, K.ADJUSTMENT], withdrawal__isnull=False)
    ).count()
    if stray:
        problems.append(f"{stray} entries linked to the wrong kind of record")
    return problems


def ledger_differences() -> list[str]:
    """Every broken invariant, one line each; ``[]`` when the ledger reconciles."""
    now = timezone.now()
    return _sums_by_promoter(now) + _entries_vs_orders() + _withdrawals() + _orphans()
