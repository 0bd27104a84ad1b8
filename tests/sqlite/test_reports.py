"""The reports on SQLite, the database ``make run`` gives a new shop: the same triggers keep
the same rollups, and every report of the hand-built week answers what it does on PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from analytics.reports import buyers, products, risk, time_of_sale
from analytics.rollups import rollups_rebuild, rollups_refresh
from orders.models import Order
from tests.analytics.conftest import shop_zone, week  # noqa: F401 - the hand-built week

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_change_triggers_are_installed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        names = {row[0] for row in cursor.fetchall()}
    assert {
        "analytics_order_insert",
        "analytics_order_update",
        "analytics_delivery_insert",
        "analytics_delivery_emailed",
        "analytics_ledger_insert",
    } <= names


def test_the_hand_built_week_on_sqlite(week):  # noqa: F811
    ask = week.ask()
    by_day = {r[0]: r[1:6] for r in time_of_sale.build(ask).table("by_day").body()}
    assert by_day["2026-11-10"] == ["1", "1", "10.00", "0.00", "10.00"]
    assert by_day["2026-11-11"] == ["2", "2", "60.00", "10.00", "50.00"]
    b = buyers.build(ask)
    assert b.table("repurchase").body() == [
        ["7 days", "3", "2", "66.7"],
        ["30 days", "3", "2", "66.7"],
    ]
    assert b.table("top_buyers").body()[0] == ["a•••@e•••.com", "2", "60.00", "0.00"]
    assert products.build(ask).table("bought_together").body() == [["Alpha", "Beta", "2"]]
    speed = risk.build(ask).table("delivery_speed").body()[0]
    assert speed == ["This period", "4", "≤ 0.50 s", "≤ 15.00 s", "≤ 15.00 s", "75.0"]
    Order.objects.filter(pk=week.orders[5].pk).update(refunded_amount=400)
    rollups_refresh()
    incremental = time_of_sale.build(ask).table("by_day").body()
    rollups_rebuild()
    assert time_of_sale.build(ask).table("by_day").body() == incremental


def test_the_pages_and_csv_on_sqlite(client, week):  # noqa: F811
    user = get_user_model().objects.create_superuser("owner", "o@example.com", "pw-Secret-123")
    client.force_login(user)
    for slug in ("time", "buyers", "products", "channels", "risk"):
        assert (
            client.get(f"/admin/reports/{slug}/?from=2026-11-09&to=2026-11-15").status_code == 200
        )
    assert client.get("/admin/reports/").status_code == 200
    for _ in range(3):
        client.get("/p/alpha")
    funnel = client.get("/admin/reports/channels/?days=7&format=csv&table=funnel").content.decode()
    assert "Product page views,3," in funnel
    assert "Today so far" in client.get("/admin/").content.decode()
    response = client.get("/admin/reports/time/?from=2026-11-09&to=2026-11-15&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "Day" and rows[2][:4] == ["2026-11-10", "1", "1", "10.00"]
