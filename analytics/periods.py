"""The date range a report covers, in the shop's time zone, and the one before it.

Dates are whole local days (``TIME_ZONE``); a range's bounds become the UTC instants of local
midnight, so "Monday" is Monday where the shop is, across daylight-saving changes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone

PRESETS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366


class PeriodError(ValueError):
    """A range the owner typed that cannot be read; the message says why."""


def shop_tz() -> tzinfo:
    return timezone.get_default_timezone()


def local_today(now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), shop_tz()).date()


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=shop_tz())


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return local_midnight(self.first)

    @property
    def end(self) -> datetime:
        """Exclusive: the midnight after ``last``."""
        return local_midnight(self.last + timedelta(days=1))

    def previous(self) -> Period:
        """The same number of days just before."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"

    def query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"


def last_days(days: int, *, today: date | None = None) -> Period:
    today = today or local_today()
    return Period(today - timedelta(days=days - 1), today)


def period_from_params(params, *, today: date | None = None) -> Period:
    """``?days=N`` (a preset) or ``?from=YYYY-MM-DD&to=YYYY-MM-DD``; default the last 30 days.
    Raises ``PeriodError`` for anything else."""
    today = today or local_today()
    if params.get("from") or params.get("to"):
        try:
            first = date.fromisoformat(params.get("from", ""))
            last = date.fromisoformat(params.get("to", ""))
        except ValueError:
            raise PeriodError("Give both dates as YYYY-MM-DD.") from None
        if first > last:
            raise PeriodError("The first date is after the last.")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"A range may cover at most {MAX_DAYS} days.")
        return Period(first, last)
    days = params.get("days", "")
    if days:
        if not days.isdigit() or int(days) not in PRESETS:
            raise PeriodError(f"Choose {', '.join(map(str, PRESETS))} days or give dates.")
        return last_days(int(days), today=today)
    return last_days(DEFAULT_DAYS, today=today)
