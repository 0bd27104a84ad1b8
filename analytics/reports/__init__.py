"""The owner's reports, one module per report; each builds a ``tables.Report`` for a period.

``REPORTS`` is the menu in page order. Every builder refreshes the rollups first
(``analytics.rollups``), so what it reads includes every change committed before the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from analytics.periods import Period
from analytics.tables import Report


@dataclass(frozen=True)
class Ask:
    """What a report is asked for: the period, the currency of its money, and "now"."""

    period: Period
    currency: str
    now: datetime


@dataclass(frozen=True)
class ReportEntry:
    slug: str
    title: str
    build: Callable[[Ask], Report]


def _entries() -> list[ReportEntry]:
    from analytics.reports import buyers, channels, products, risk, time_of_sale, top_line

    return [
        ReportEntry("overview", "Top line", top_line.build),
        ReportEntry("time", "Time", time_of_sale.build),
        ReportEntry("buyers", "Buyers", buyers.build),
        ReportEntry("products", "Products", products.build),
        ReportEntry("channels", "Channels", channels.build),
        ReportEntry("risk", "Risk and service", risk.build),
    ]


def report_entries() -> list[ReportEntry]:
    return _entries()


def report_entry(slug: str) -> ReportEntry | None:
    return next((e for e in _entries() if e.slug == slug), None)
