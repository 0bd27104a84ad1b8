"""A small hand-built history for the report tests: orders placed at given local times, in
given states, whose right answers the tests work out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from analytics.models import OrderSource
from analytics.periods import shop_tz
from commissions.models import Attribution, LedgerEntry, Promoter
from orders.models import Delivery, Order, OrderStatus
from tests.commissions.factories import PromoterFactory
from tests.factories import OrderFactory


def local(text: str) -> datetime:
    """``"2026-11-10 23:30"`` in the shop's time zone (``TIME_ZONE``) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=shop_tz())


def promoter(code: str) -> Promoter:
    return PromoterFactory(code=code)


def placed(
    when: str | datetime,
    *,
    product,
    email: str = "buyer@example.com",
    quantity: int = 1,
    paid: bool = True,
    delivered: bool | None = None,
    status: str | None = None,
    refunded: int = 0,
    disputed: bool = False,
    latency_ms: int | None = 500,
    paid_after: timedelta = timedelta(minutes=1),
    by: Promoter | None = None,
    commission: int = 0,
    source: tuple[str, str] | None = None,
) -> Order:
    """One order placed at ``when`` (local text or aware datetime), paid a minute later and
    delivered at once unless told otherwise."""
    at = local(when) if isinstance(when, str) else when
    delivered = paid if delivered is None else delivered
    if status is None:
        status = (
            OrderStatus.REFUNDED
            if refunded and refunded >= product.price * quantity
            else OrderStatus.DELIVERED
            if delivered
            else OrderStatus.PAID
            if paid
            else OrderStatus.EXPIRED
        )
    order = OrderFactory(
        product=product,
        quantity=quantity,
        email=email,
        status=status,
        reserve=False,
        hold_expires_at=at + timedelta(minutes=15),
        paid_amount=product.price * quantity if paid else None,
        paid_currency=product.currency if paid else "",
    )
    paid_at = at + paid_after if paid else None
    Order.objects.filter(pk=order.pk).update(
        created_at=at,
        paid_at=paid_at,
        delivered_at=paid_at if delivered else None,
        refunded_amount=refunded,
        disputed_at=paid_at if disputed else None,
    )
    if delivered:
        delivery = Delivery.objects.create(order=order, key_count=quantity, latency_ms=latency_ms)
        Delivery.objects.filter(pk=delivery.pk).update(created_at=paid_at)
    if by is not None:
        Attribution.objects.create(
            order=order, ref_code=by.code, status=Attribution.Status.ATTRIBUTED, promoter=by
        )
        if commission:
            LedgerEntry.objects.create(
                promoter=by,
                kind=LedgerEntry.Kind.COMMISSION,
                amount=commission,
                currency=product.currency,
                order=order,
                level=1,
                available_at=timezone.now(),
            )
    if source is not None:
        OrderSource.objects.create(order=order, kind=source[0], value=source[1])
    order.refresh_from_db()
    return order
