"""Time: revenue and orders by day against the previous period, the hour × weekday heat map,
and the peak and quiet hours named in words."""

from __future__ import annotations

from analytics.reports import Ask
from analytics.rollups import rollups_refresh
from analytics.selectors import paid_by_hour_of_week, sales_by_day, sales_totals
from analytics.tables import (
    MONEY,
    TEXT,
    Chart,
    Column,
    Figure,
    Report,
    Table,
    change,
    major,
    series,
)
from core.money import to_decimal_string

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _hour_range(hour: int) -> str:
    return f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def _orders(n: int) -> str:
    return f"{n} paid order{'s' if n != 1 else ''}"


def peak_and_quiet(cells: dict[tuple[int, int], int], *, n: int = 3) -> tuple[list, list]:
    """The busiest and quietest (weekday, hour) cells; ties go to the earlier cell."""
    ordered = sorted(
        ((wd, h, cells.get((wd, h), 0)) for wd in range(1, 8) for h in range(24)),
        key=lambda c: (-c[2], c[0], c[1]),
    )
    busiest = [c for c in ordered if c[2] > 0][:n]
    quietest = sorted(ordered, key=lambda c: (c[2], c[0], c[1]))[:n]
    return busiest, quietest


def words(cells: dict[tuple[int, int], int]) -> list[str]:
    total = sum(cells.values())
    if not total:
        return ["No paid orders in this period yet, so no peak to name."]
    busiest, quietest = peak_and_quiet(cells)
    by_hour = [sum(cells.get((wd, h), 0) for wd in range(1, 8)) for h in range(24)]
    by_day = [sum(cells.get((wd, h), 0) for h in range(24)) for wd in range(1, 8)]
    peak_hour = max(range(24), key=lambda h: (by_hour[h], -h))
    quiet_hour = min(range(24), key=lambda h: (by_hour[h], h))
    peak_day = max(range(7), key=lambda d: (by_day[d], -d))
    first = busiest[0]
    lines = [
        f"Peak: {WEEKDAYS[first[0] - 1]}s {_hour_range(first[1])}, "
        f"{_orders(first[2])} ({100 * first[2] / total:.1f}% of the period's).",
        f"Busiest hour of the day: {_hour_range(peak_hour)} "
        f"({100 * by_hour[peak_hour] / total:.1f}% of paid orders); "
        f"quietest: {_hour_range(quiet_hour)} ({100 * by_hour[quiet_hour] / total:.1f}%).",
        f"Busiest day of the week: {WEEKDAYS[peak_day]} ({100 * by_day[peak_day] / total:.1f}%).",
        "Quiet hours: "
        + "; ".join(f"{WEEKDAYS[wd - 1]}s {_hour_range(h)} ({v})" for wd, h, v in quietest)
        + ".",
    ]
    if len(busiest) > 1:
        lines.insert(
            1,
            "Next busiest: "
            + "; ".join(f"{WEEKDAYS[wd - 1]}s {_hour_range(h)} ({v})" for wd, h, v in busiest[1:])
            + ".",
        )
    return lines


def build(ask: Ask) -> Report:
    rollups_refresh()
    p, prev, cur = ask.period, ask.period.previous(), ask.currency
    fields = ("orders", "paid_orders", "revenue", "refunded_amount")
    now_days = sales_by_day(p.start, p.end, cur, fields)
    before_days = sales_by_day(prev.start, prev.end, cur, fields)
    total = sales_totals(p.start, p.end, cur, fields)
    before = sales_totals(prev.start, prev.end, cur, fields)
    rows = []
    for day, prev_day in zip(p.dates(), prev.dates(), strict=True):
        d = now_days.get(day, {})
        b = before_days.get(prev_day, {})
        rows.append(
            {
                "day": day.isoformat(),
                "orders": d.get("orders", 0),
                "paid": d.get("paid_orders", 0),
                "revenue": d.get("revenue", 0),
                "refunded": d.get("refunded_amount", 0),
                "net": d.get("revenue", 0) - d.get("refunded_amount", 0),
                "previous_day": prev_day.isoformat(),
                "previous_revenue": b.get("revenue", 0),
                "previous_orders": b.get("orders", 0),
            }
        )
    by_day = Table(
        id="by_day",
        title="Revenue and orders by day",
        columns=[
            Column("day", "Day", TEXT),
            Column("orders", "Orders"),
            Column("paid", "Paid"),
            Column("revenue", "Revenue", MONEY),
            Column("refunded", "Refunded", MONEY),
            Column("net", "Net", MONEY),
            Column("previous_day", "Previous period's day", TEXT),
            Column("previous_orders", "Its orders"),
            Column("previous_revenue", "Its revenue", MONEY),
        ],
        rows=rows,
        currency=cur,
    )
    cells = paid_by_hour_of_week(p.start, p.end, cur)
    heat_rows = [
        {"weekday": WEEKDAYS[wd - 1], **{f"h{h:02d}": cells.get((wd, h), 0) for h in range(24)}}
        for wd in range(1, 8)
    ]
    heat = Table(
        id="heatmap",
        title="Paid orders by hour of day and weekday",
        columns=[Column("weekday", "Weekday", TEXT)]
        + [Column(f"h{h:02d}", f"{h:02d}") for h in range(24)],
        rows=heat_rows,
    )
    money = lambda v: f"{to_decimal_string(v, cur)} {cur}"  # noqa: E731
    figures = [
        Figure(
            "Revenue",
            money(total["revenue"]),
            money(before["revenue"]),
            change(total["revenue"], before["revenue"]),
        ),
        Figure(
            "Orders",
            str(total["orders"]),
            str(before["orders"]),
            change(total["orders"], before["orders"]),
        ),
        Figure(
            "Paid orders",
            str(total["paid_orders"]),
            str(before["paid_orders"]),
            change(total["paid_orders"], before["paid_orders"]),
        ),
    ]
    charts = [
        Chart(
            id="by_day_chart",
            title=f"Revenue by day ({cur}) and orders",
            kind="bar_line",
            table="by_day",
            categories=[r["day"] for r in rows],
            series=[
                series("Revenue", [major(r["revenue"], cur) for r in rows]),
                series(
                    "Previous period's revenue", [major(r["previous_revenue"], cur) for r in rows]
                ),
                series("Orders", [r["orders"] for r in rows]),
            ],
        ),
        Chart(
            id="heatmap_chart",
            title="Paid orders by hour and weekday",
            kind="heatmap",
            table="heatmap",
            categories=[f"{h:02d}" for h in range(24)],
            series=[series(r["weekday"], [r[f"h{h:02d}"] for h in range(24)]) for r in heat_rows],
        ),
    ]
    return Report(
        slug="time",
        title="Time",
        figures=figures,
        tables=[by_day, heat],
        charts=charts,
        words=words(cells),
        notes=["Hours and days are the shop's local time; orders count where they were placed."],
    )
