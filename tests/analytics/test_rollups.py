"""The rollups stay exact: every committed change to an order is recomputed into the hour it
was placed in — refunds and late deliveries of yesterday's orders included — and a change still
in flight is neither lost nor half-counted."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from analytics.models import (
    BuyerSummary,
    ChannelHour,
    LatencyHour,
    OrderChange,
    PairDay,
    PairHour,
    SalesDay,
    SalesHour,
    ShopHour,
)
from analytics.rollups import pending_marks, rollups_rebuild, rollups_refresh
from orders.models import Order, OrderStatus
from tests.analytics.history import placed
from tests.concurrency import run_concurrently
from tests.factories import ProductFactory

pytestmark = [pytest.mark.postgres]


def snapshot() -> dict:
    """Every rollup row, as comparable tuples."""
    sales = sorted(
        SalesHour.objects.values_list(*[f.name for f in SalesHour._meta.fields if f.name != "id"])
    )
    channels = sorted(
        ChannelHour.objects.values_list(
            *[f.name for f in ChannelHour._meta.fields if f.name != "id"]
        )
    )
    shop = sorted(
        ShopHour.objects.values_list(*[f.name for f in ShopHour._meta.fields if f.name != "id"])
    )
    buyers = sorted(BuyerSummary.objects.values_list())
    pairs = sorted(PairHour.objects.values_list("hour", "product_a", "product_b", "pairs"))
    latency = sorted(LatencyHour.objects.values_list("hour", "bucket", "deliveries"))
    days = sorted(SalesDay.objects.values_list("day", "product_id", "orders", "revenue"))
    pair_days = sorted(PairDay.objects.values_list("day", "product_a", "product_b", "pairs"))
    return {
        "sales": sales,
        "shop": shop,
        "channels": channels,
        "buyers": buyers,
        "pairs": pairs,
        "latency": latency,
        "days": days,
        "pair_days": pair_days,
    }


def direct_totals() -> dict:
    return Order.objects.aggregate(
        orders=Count("pk"),
        paid=Count("pk", filter=Q(paid_at__isnull=False)),
        delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
        refunded=Sum("refunded_amount"),
    )


def rollup_totals() -> dict:
    agg = SalesHour.objects.aggregate(
        orders=Sum("orders"),
        paid=Sum("paid_orders"),
        delivered=Sum("delivered_orders"),
        refunded=Sum("refunded_amount"),
    )
    return agg


@pytest.mark.django_db
def test_incremental_refreshes_equal_a_rebuild_after_many_changes():
    rng = random.Random(11)
    products = [ProductFactory(price=p) for p in (300, 990, 4500)]
    start = timezone.now() - timedelta(days=3)
    orders = [
        placed(
            start + timedelta(minutes=rng.randrange(3 * 24 * 60)),
            product=rng.choice(products),
            email=f"buyer{rng.randrange(15)}@example.com",
            quantity=rng.randint(1, 3),
            paid=rng.random() < 0.8,
        )
        for _ in range(60)
    ]
    rollups_refresh()
    for order in rng.sample(orders, 25):  # later: refunds, disputes, late deliveries
        if order.paid_at is None:
            continue
        change = rng.choice(["refund", "partial", "dispute"])
        if change == "refund":
            Order.objects.filter(pk=order.pk).update(
                status=OrderStatus.REFUNDED, refunded_amount=order.amount
            )
        elif change == "partial":
            Order.objects.filter(pk=order.pk).update(refunded_amount=order.amount // 3)
        else:
            Order.objects.filter(pk=order.pk).update(disputed_at=timezone.now())
        if rng.random() < 0.3:
            rollups_refresh()  # refreshes interleaved with the changes
    rollups_refresh()
    assert pending_marks() == 0
    incremental = snapshot()
    assert rollup_totals() == direct_totals()
    assert incremental["pairs"] and any(row[-3] for row in incremental["shop"])  # repeat_7
    rollups_rebuild()
    assert snapshot() == incremental


@pytest.mark.django_db
def test_a_second_payment_later_counts_as_a_repurchase_of_the_first_orders_hour():
    product, other = ProductFactory(price=1000), ProductFactory(price=500)
    first = placed(timezone.now() - timedelta(days=10), product=product, email="a@example.com")
    rollups_refresh()
    hour = ShopHour.objects.get()
    assert (hour.new_buyer_orders, hour.repeat_7, hour.repeat_30) == (1, 0, 0)
    placed(timezone.now() - timedelta(days=5), product=other, email="a@example.com")
    rollups_refresh()
    hour = ShopHour.objects.get(
        hour__lte=first.created_at, hour__gt=first.created_at - timedelta(hours=1)
    )
    assert (hour.new_buyer_orders, hour.repeat_7, hour.repeat_30) == (1, 1, 1)
    assert PairHour.objects.get().pairs == 1


@pytest.mark.django_db
def test_a_late_delivery_counts_in_the_hour_the_order_was_placed():
    product = ProductFactory(price=1000)
    yesterday = timezone.now() - timedelta(days=1)
    order = placed(yesterday, product=product, delivered=False, status=OrderStatus.BACKORDERED)
    rollups_refresh()
    row = SalesHour.objects.get()
    assert (row.paid_orders, row.delivered_orders) == (1, 0)
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.DELIVERED, delivered_at=timezone.now()
    )
    rollups_refresh()
    row = SalesHour.objects.get()  # still one row: yesterday's hour, now delivered
    assert row.hour <= yesterday < row.hour + timedelta(hours=1)
    assert (row.paid_orders, row.delivered_orders, row.units_delivered) == (1, 1, 1)


@pytest.mark.django_db
def test_only_changes_that_matter_leave_a_mark():
    order = placed(timezone.now(), product=ProductFactory())
    rollups_refresh()
    Order.objects.filter(pk=order.pk).update(user_agent="changed", hold_expires_at=timezone.now())
    assert pending_marks() == 0
    Order.objects.filter(pk=order.pk).update(refunded_amount=1)
    assert list(OrderChange.objects.values_list("order_id", flat=True)) == [order.pk]


@pytest.mark.django_db(transaction=True)
def test_a_change_in_flight_is_counted_once_it_commits():
    product = ProductFactory(price=1000)
    order = placed(timezone.now() - timedelta(days=1), product=product)
    rollups_refresh()
    updated, release = threading.Event(), threading.Event()

    def refund_slowly() -> None:
        try:
            with transaction.atomic():
                Order.objects.filter(pk=order.pk).update(refunded_amount=400)
                updated.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=refund_slowly)
    writer.start()
    assert updated.wait(10)
    rollups_refresh()  # the refund and its mark are not committed: neither is seen
    assert SalesHour.objects.get().refunded_amount == 0
    release.set()
    writer.join(10)
    rollups_refresh()
    assert SalesHour.objects.get().refunded_amount == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_and_writers_end_exact():
    product = ProductFactory(price=1000)
    base = timezone.now() - timedelta(hours=5)
    orders = [placed(base + timedelta(minutes=7 * i), product=product) for i in range(20)]

    def work(i: int) -> None:
        if i % 2:
            for _ in range(5):
                rollups_refresh()
        else:
            for order in orders[i::4]:
                with transaction.atomic():
                    Order.objects.filter(pk=order.pk).update(refunded_amount=100 + i)

    assert all(r is None for r in run_concurrently(6, work))
    rollups_refresh()
    assert rollup_totals() == direct_totals()
    incremental = snapshot()
    rollups_rebuild()
    assert snapshot() == incremental
