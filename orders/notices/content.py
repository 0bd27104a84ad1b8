"""What a batch of notices says: one message, whatever the channel, in the shop's language.

Rendered when the batch closes and stored on its outbox row (``subject``, ``text``, ``url``,
``counts``, ``items``): order numbers, products, amounts and times only. No buyer email, no
key, no error text (a provider's error can quote the buyer's address): these messages cross
third-party servers (Telegram, WeCom, DingTalk, Feishu, Apple's push).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.money import format_money, to_decimal_string
from orders.notices.models import NoticeBatch, NoticeItem, NoticeKind, OwnerNotifier
from shop.models import ShopSettings

#: Events listed one per line in a message, per kind; the rest are counted.
LINES_PER_KIND = 10
#: Events a generic-URL destination gets as data, in all.
ITEMS_IN_DATA = 100

KIND_ORDER = [
    NoticeKind.HOLD,
    NoticeKind.DELIVERY_FAILED,
    NoticeKind.BACKORDER,
    NoticeKind.NEW_ORDER,
]

ADMIN_PATHS = {
    NoticeKind.NEW_ORDER: "/admin/orders/order/",
    NoticeKind.HOLD: "/admin/orders/order/?status__exact=on_hold",
    NoticeKind.BACKORDER: "/admin/orders/order/?status__exact=backordered",
    NoticeKind.DELIVERY_FAILED: "/admin/orders/outboxmessage/?status__exact=failed",
}


def _headline(kind: str, count: int) -> str:
    if kind == NoticeKind.NEW_ORDER:
        return ngettext("%(count)d new order", "%(count)d new orders", count) % {"count": count}
    if kind == NoticeKind.HOLD:
        return ngettext("%(count)d order on hold", "%(count)d orders on hold", count) % {
            "count": count
        }
    if kind == NoticeKind.BACKORDER:
        return ngettext("%(count)d order backordered", "%(count)d orders backordered", count) % {
            "count": count
        }
    return ngettext(
        "%(count)d buyer not reached on any channel",
        "%(count)d buyers not reached on any channel",
        count,
    ) % {"count": count}


def _line(item: NoticeItem) -> str:
    at = f"{timezone.localtime(item.occurred_at):%H:%M}"
    order = item.order
    if order is None:
        return f"· {at} {item.detail}".rstrip()
    parts = [
        f"· {at} {order.order_no}",
        f"{order.product.name} × {order.quantity}",
        format_money(order.amount, order.currency),
    ]
    if item.detail:
        parts.append(item.detail)
    return "  ".join(parts)


def _item_data(item: NoticeItem) -> dict[str, Any]:
    order = item.order
    return {
        "kind": item.kind,
        "at": item.occurred_at.isoformat(),
        "detail": item.detail,
        "order_no": order.order_no if order else None,
        "product": order.product.slug if order else None,
        "quantity": order.quantity if order else None,
        "amount": to_decimal_string(order.amount, order.currency) if order else None,
        "currency": order.currency if order else None,
    }


def batch_content(batch: NoticeBatch) -> dict[str, Any]:
    """The batch's message: a headline of counts, then per kind its lines and a link."""
    with translation.override(settings.LANGUAGE_CODE):
        return _batch_content(batch)


def _batch_content(batch: NoticeBatch) -> dict[str, Any]:
    items = NoticeItem.objects.filter(batch=batch)
    counts = {
        row["kind"]: row["n"] for row in items.values("kind").annotate(n=Count("id")).order_by()
    }
    kinds = [kind for kind in KIND_ORDER if counts.get(kind)]
    revenue: dict[str, int] = defaultdict(int)
    for row in (
        items.filter(kind=NoticeKind.NEW_ORDER)
        .values("order__currency")
        .annotate(total=Sum("order__amount"))
        .order_by()
    ):
        if row["order__currency"]:
            revenue[row["order__currency"]] += row["total"] or 0
    span = items.order_by().values_list("occurred_at", flat=True)
    first, last = min(span), max(span)
    shop = ShopSettings.load().shop_name
    headline = " · ".join(_headline(kind, counts[kind]) for kind in kinds)
    when = f"{timezone.localtime(first):%Y-%m-%d %H:%M}"
    if f"{timezone.localtime(last):%H:%M}" != f"{timezone.localtime(first):%H:%M}":
        when += f"–{timezone.localtime(last):%H:%M}"
    sections = [f"{shop}: {headline} ({when})"]
    data_items: list[dict[str, Any]] = []
    for kind in kinds:
        listed = list(
            items.filter(kind=kind)
            .select_related("order__product")
            .order_by("occurred_at", "id")[:LINES_PER_KIND]
        )
        title = f"{NoticeKind(kind).label}: {counts[kind]}"
        if kind == NoticeKind.NEW_ORDER and revenue:
            title += (
                " ("
                + ", ".join(
                    format_money(total, currency) for currency, total in sorted(revenue.items())
                )
                + ")"
            )
        lines = [title, *(_line(item) for item in listed)]
        if counts[kind] > len(listed):
            lines.append(_("… and %(count)d more") % {"count": counts[kind] - len(listed)})
        lines.append(f"{settings.SITE_URL}{ADMIN_PATHS[NoticeKind(kind)]}")
        sections.append("\n".join(lines))
        data_items += [_item_data(item) for item in listed]
    return {
        "subject": f"[{shop}] {headline}"[:250],
        "text": "\n\n".join(sections),
        "url": f"{settings.SITE_URL}{ADMIN_PATHS[NoticeKind(kinds[0])]}",
        "counts": {kind: counts[kind] for kind in kinds},
        "items": data_items[:ITEMS_IN_DATA],
    }


def test_content(notifier: OwnerNotifier) -> dict[str, Any]:
    with translation.override(settings.LANGUAGE_CODE):
        shop = ShopSettings.load().shop_name
        wanted = ", ".join(str(NoticeKind(kind).label) for kind in notifier.events) or _(
            "nothing yet"
        )
        text = _("%(shop)s: a test message. Notifications sent here: %(events)s.") % {
            "shop": shop,
            "events": wanted,
        }
        return {
            "subject": f"[{shop}] " + _("Test message"),
            "text": text,
            "url": f"{settings.SITE_URL}/admin/",
            "counts": {},
            "items": [],
        }
