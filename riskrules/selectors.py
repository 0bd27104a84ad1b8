"""Reads for risk control: the rules in force, the counts they compare, and the queues.

Velocity counts run inside the checkout transaction after the buyer's advisory locks
(``orders.locks.lock_buyer`` on email and IP), so no other checkout of the same email or IP can
add an order between the count and the insert: the count is exact, not a snapshot.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from django.db import connection
from django.db.models import Avg, Count, Exists, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from core.identity import email_identity
from orders.models import Order, OrderStatus
from riskrules.models import BlocklistEntry, RiskDecision, RiskRule, RuleAction

#: Orders that count as sales for averages and the stock forecast.
SOLD_STATUSES = (OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.BACKORDERED)


def rules_in_force() -> list[RiskRule]:
    """Every enabled rule in evaluation order. Read fresh for each checkout on purpose: an
    owner's edit in the admin applies to the very next order, with no cache to invalidate."""
    return list(RiskRule.objects.filter(enabled=True).order_by("position", "pk"))


def velocity_seen(
    *,
    key: str,
    measure: str,
    since: datetime,
    product_id: int,
    email: str,
    client_ip: str | None,
) -> int | None:
    """Orders (or units) this buyer placed since ``since`` under ``key``; None when the key
    cannot apply (no client IP known)."""
    qs = Order.objects.filter(created_at__gte=since)
    if key in (RiskRule.Key.IP, RiskRule.Key.IP_PRODUCT):
        if not client_ip:
            return None
        qs = qs.filter(client_ip=client_ip)
    else:
        qs = qs.filter(buyer_identity=email_identity(email))
    if key in (RiskRule.Key.IP_PRODUCT, RiskRule.Key.EMAIL_PRODUCT):
        qs = qs.filter(product_id=product_id)
    if measure == RiskRule.Measure.UNITS:
        return qs.aggregate(total=Sum("quantity"))["total"] or 0
    return qs.count()


def product_average_order(*, product_id: int, since: datetime) -> tuple[float | None, int]:
    """The product's mean paid order amount since ``since`` and how many orders made it."""
    row = Order.objects.filter(
        product_id=product_id, status__in=SOLD_STATUSES, paid_at__gte=since
    ).aggregate(avg=Avg("amount"), n=Count("pk"))
    return (float(row["avg"]) if row["avg"] is not None else None), row["n"]


def email_domains(email: str) -> list[str]:
    """``a@mx.example.com`` → ``["mx.example.com", "example.com"]``: a blocked domain covers
    its subdomains too."""
    domain = email.rpartition("@")[2].strip(".")
    parts = domain.split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)] if len(parts) > 1 else [domain]


# The CASE keeps PostgreSQL from casting an email or domain value to inet, whatever order it
# chooses to evaluate the conditions in.
_NETWORK_MATCH_SQL = (
    "SELECT id FROM riskrules_blocklistentry WHERE kind = 'network' "
    "AND CASE WHEN kind = 'network' THEN value::inet >>= %s::inet ELSE false END"
)


def blocklist_match(
    *, email: str, client_ip: str | None, now: datetime, only_if_rule_enabled: bool = False
) -> BlocklistEntry | None:
    """The first live entry that covers this email or IP, in one query.

    ``only_if_rule_enabled``: match only while a blocklist rule is enabled, asked in the same
    query (the payment path, where every round trip delays a key).

    Email and domain hits are exact (by index); IP ranges are matched by PostgreSQL's ``inet``
    containment, or in Python on SQLite.
    """
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    candidates = Q(kind=BlocklistEntry.Kind.EMAIL, value__in={email, email_identity(email)}) | Q(
        kind=BlocklistEntry.Kind.DOMAIN, value__in=email_domains(email)
    )
    in_database = client_ip and connection.vendor == "postgresql"
    if in_database:
        # inet containment in the database: no need to fetch and parse every range.
        candidates |= Q(pk__in=RawSQL(_NETWORK_MATCH_SQL, [client_ip]))  # noqa: S611 (constant SQL, bound param)
    elif client_ip:
        candidates |= Q(kind=BlocklistEntry.Kind.NETWORK)
    entries_qs = BlocklistEntry.objects.filter(live).filter(candidates)
    if only_if_rule_enabled:
        entries_qs = entries_qs.filter(
            Exists(RiskRule.objects.filter(kind=RiskRule.Kind.BLOCKLIST, enabled=True))
        )
    entries = list(entries_qs)
    for entry in entries:
        if entry.kind != BlocklistEntry.Kind.NETWORK or in_database:
            return entry
    if client_ip:
        ip = ipaddress.ip_address(client_ip)
        for entry in entries:
            try:
                if ip in ipaddress.ip_network(entry.value, strict=False):
                    return entry
            except (ValueError, TypeError):
                continue
    return None


def payment_review_facts(*, order_id: int) -> tuple[list[str], bool]:
    """What a payment review needs, in one statement: the hold reasons decided at the order's
    checkout, and whether any blocklist could apply at all (an enabled blocklist rule and at
    least one entry). Most shops, most of the time, have no blocklist to match, so the payment
    of a key costs one cheap query here, not a blocklist match."""
    q = connection.ops.quote_name
    decisions = q(RiskDecision._meta.db_table)
    entries = q(BlocklistEntry._meta.db_table)
    rules = q(RiskRule._meta.db_table)
    sql = (
        f"SELECT message, 0, id FROM {decisions} WHERE order_id = %s AND outcome = %s "  # noqa: S608 - model metadata
        f"UNION ALL SELECT '', 1, 0 WHERE EXISTS (SELECT 1 FROM {rules} "
        f"WHERE kind = %s AND enabled = %s) AND EXISTS (SELECT 1 FROM {entries}) "
        "ORDER BY 2, 3"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [order_id, RuleAction.HOLD, RiskRule.Kind.BLOCKLIST, True])
        rows = cursor.fetchall()
    return [message for message, flag, _ in rows if not flag], any(flag for _, flag, _ in rows)


def review_queue(orders: QuerySet[Order] | None = None) -> QuerySet[Order]:
    """Paid orders waiting for the owner, newest first: the admin's review queue.

    ``orders`` is the queryset to narrow (the admin passes its proxy model's); default all."""
    orders = Order.objects.all() if orders is None else orders
    return (
        orders.filter(status=OrderStatus.ON_HOLD)
        .select_related("product")
        .order_by("-created_at", "-pk")
    )


def holds_and_blocks_since(*, since: datetime) -> int:
    return RiskDecision.objects.filter(
        outcome__in=(RuleAction.BLOCK, RuleAction.HOLD), created_at__gte=since
    ).count()


def units_sold_since(*, since: datetime) -> dict[int, int]:
    """Units sold per product since ``since`` (for the stock forecast)."""
    rows = (
        Order.objects.filter(status__in=SOLD_STATUSES, paid_at__gte=since)
        .values("product_id")
        .annotate(units=Sum("quantity"))
    )
    return {row["product_id"]: row["units"] or 0 for row in rows}
