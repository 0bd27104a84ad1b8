"""``manage.py generate_history``: a realistic history in bulk SQL whose rollups agree with
its orders, with the shape the reports are for (peaks, returning buyers, promoters, refunds)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Q, Sum
from django.utils import timezone

from analytics.models import BuyerSummary, ChannelHour, OrderSource, ProductViewHour, SalesHour
from analytics.periods import Period, local_today
from analytics.reports import Ask, time_of_sale
from cardpool.models import CardKey
from commissions.models import Attribution, LedgerEntry
from orders.models import Delivery, Order, OrderStatus
from riskrules.models import RiskDecision

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

N = 6000


@pytest.fixture
def history(capsys):
    call_command("generate_history", orders=N, days=60)
    return capsys.readouterr().out


def test_it_makes_exactly_n_orders_with_their_records(history):
    assert f"generated {N:,} orders" in history
    orders = Order.objects.all()
    assert orders.count() == N
    assert orders.filter(created_at__gt=timezone.now()).count() == 0
    assert orders.filter(created_at__lt=timezone.now() - timedelta(days=67)).count() == 0
    delivered = orders.filter(delivered_at__isnull=False)
    assert Delivery.objects.count() == delivered.count()
    units = delivered.aggregate(u=Sum("quantity"))["u"]
    assert CardKey.objects.filter(status=CardKey.Status.SOLD).count() == units
    by_status = dict(orders.values_list("status").annotate(n=Count("pk")))
    assert by_status["expired"] > N * 0.07 and by_status["refunded"] > N * 0.01
    assert orders.filter(refunded_amount__gt=0, status=OrderStatus.DELIVERED).exists()
    assert orders.filter(disputed_at__isnull=False).exists()
    attributed = Attribution.objects.count()
    assert N * 0.14 < attributed < N * 0.22
    assert LedgerEntry.objects.filter(kind="clawback").exists()
    assert LedgerEntry.objects.filter(level=2).exists()
    assert OrderSource.objects.filter(kind="utm").exists()
    assert RiskDecision.objects.filter(outcome="block").count() == N // 100


def test_returning_buyers_exist_and_some_buy_often(history):
    per_buyer = Order.objects.values("buyer_identity").annotate(n=Count("pk"))
    assert per_buyer.filter(n__gt=1).count() > 100
    assert per_buyer.order_by("-n").first()["n"] >= 10
    assert BuyerSummary.objects.filter(second_paid_at__isnull=False).exists()


def test_the_rollups_agree_with_the_orders(history):
    direct = Order.objects.aggregate(
        orders=Count("pk"),
        paid=Count("pk", filter=Q(paid_at__isnull=False)),
        revenue=Sum("paid_amount"),
        refunded=Sum("refunded_amount"),
    )
    rolled = SalesHour.objects.aggregate(
        orders=Sum("orders"),
        paid=Sum("paid_orders"),
        revenue=Sum("revenue"),
        refunded=Sum("refunded_amount"),
    )
    assert rolled == direct
    assert ChannelHour.objects.aggregate(n=Sum("orders"))["n"] == N
    assert ProductViewHour.objects.aggregate(v=Sum("views"))["v"] > N * 10


def test_evenings_and_weekends_are_the_peak(history):
    today = local_today()
    report = time_of_sale.build(
        Ask(Period(today - timedelta(days=59), today), "USD", timezone.now())
    )
    heat = {row[0]: [int(v) for v in row[1:]] for row in report.table("heatmap").body()}
    evenings = sum(heat[d][21] + heat[d][22] for d in heat)
    nights = sum(heat[d][3] + heat[d][4] for d in heat)
    assert evenings > 5 * nights
    assert sum(heat["Saturday"]) > sum(heat["Tuesday"])
    assert report.words[0].startswith("Peak: ") and (
        "21:00" in report.words[0] or "22:00" in report.words[0]
    )


def test_it_refuses_a_database_with_orders_unless_forced(history):
    with pytest.raises(CommandError, match="already has orders"):
        call_command("generate_history", orders=10)
    call_command("generate_history", orders=10, force=True)
    assert Order.objects.count() == N + 10
