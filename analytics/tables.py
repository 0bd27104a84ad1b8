"""Report tables and the charts drawn from them: one definition for the page and the CSV.

A cell is formatted once (``Table.text``), and the HTML table and the CSV both print that
text, so what the owner downloads is exactly what they saw. Charts carry raw numbers taken
from the same rows, never a second query.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.money import to_decimal_string

INT, MONEY, PERCENT, TEXT, DECIMAL = "int", "money", "percent", "text", "decimal"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = INT


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    currency: str = ""
    note: str = ""

    def text(self, row: dict[str, Any], column: Column) -> str:
        value = row.get(column.key)
        if value is None:
            return "—"
        if column.kind == MONEY:
            return to_decimal_string(int(value), self.currency)
        if column.kind == PERCENT:
            return f"{Decimal(str(value)).quantize(Decimal('0.1'))}"
        if column.kind == DECIMAL:
            return f"{Decimal(str(value)).quantize(Decimal('0.1'))}"
        if column.kind == INT:
            return str(int(value))
        return str(value)

    def header(self) -> list[str]:
        return [self.label(c) for c in self.columns]

    def label(self, column: Column) -> str:
        if column.kind == MONEY and self.currency:
            return f"{column.label} ({self.currency})"
        if column.kind == PERCENT:
            return f"{column.label} (%)"
        return column.label

    def body(self) -> list[list[str]]:
        return [[self.text(row, c) for c in self.columns] for row in self.rows]

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.header())
        writer.writerows(self.body())
        return out.getvalue()


@dataclass
class Chart:
    """What ``static/analytics/reports.js`` draws: ``kind`` bar/line/heatmap/funnel/pie, the
    category axis and one or more numeric series, all taken from ``table``'s rows."""

    id: str
    title: str
    kind: str
    table: str
    categories: list[str]
    series: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "categories": self.categories,
            "series": self.series,
            **self.extra,
        }


def series(name: str, values: list) -> dict[str, Any]:
    return {"name": name, "data": [float(v) if v is not None else None for v in values]}


def major(minor: int | None, currency: str) -> float:
    """Money as a number for a chart axis (tables keep exact decimal strings)."""
    return float(to_decimal_string(int(minor or 0), currency)) if currency else float(minor or 0)


def rate(part: int | float | None, whole: int | float | None) -> float | None:
    """A percentage, or None when there is nothing to divide by."""
    if not whole:
        return None
    return 100.0 * float(part or 0) / float(whole)


@dataclass
class Figure:
    """A headline number with the previous period's beside it."""

    label: str
    value: str
    previous: str = ""
    change: str = ""
    note: str = ""


def change(now: int | float | None, before: int | float | None) -> str:
    if now is None or before is None:
        return ""
    if before == 0:
        return "new" if now else "±0"
    pct = 100.0 * (float(now) - float(before)) / float(before)
    return f"{pct:+.0f}%"


@dataclass
class Report:
    slug: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, table_id: str) -> Table | None:
        return next((t for t in self.tables if t.id == table_id), None)
