"""``/admin/reports/``: the owner's reports, inside the admin (its login, staff check and
second factor apply: every view is wrapped by ``admin.site.admin_view`` in ``urls.py``).

Each report page takes ``?days=`` or ``?from=&to=`` and ``?currency=``; ``?format=csv&table=ID``
answers one of its tables as CSV, the same cells as on the page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from analytics.periods import PRESETS, PeriodError, last_days, period_from_params
from analytics.reports import Ask, report_entries, report_entry
from analytics.selectors import currencies_seen


def report_page(request: HttpRequest, slug: str = "overview") -> HttpResponse:
    entry = report_entry(slug)
    if entry is None:
        raise Http404("No such report")
    error = ""
    try:
        period = period_from_params(request.GET)
    except PeriodError as exc:
        error, period = str(exc), last_days(30)
    currencies = currencies_seen()
    currency = request.GET.get("currency", "")
    if currency not in currencies:
        currency = currencies[0]
    wanted = request.GET.get("format", "")
    if wanted not in ("", "csv", "html"):
        return HttpResponse(
            "Unknown format: use format=csv, or leave it out for the page.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    if wanted == "csv" and error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    report = entry.build(Ask(period=period, currency=currency, now=timezone.now()))
    if wanted == "csv":
        table_id = request.GET.get("table") or report.tables[0].id
        table = report.table(table_id)
        if table is None:
            known = ", ".join(t.id for t in report.tables)
            return HttpResponse(
                f"No table {table_id!r} in this report; its tables are: {known}.",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        response = HttpResponse(table.as_csv(), content_type="text/csv; charset=utf-8")
        name = f"kami-{slug}-{table.id}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    sections = [
        (table, [c for c in report.charts if c.table == table.id]) for table in report.tables
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Reports: {report.title}",
        "report": report,
        "entries": report_entries(),
        "sections": sections,
        "period": period,
        "presets": PRESETS,
        "currency": currency,
        "currencies": currencies,
        "error": error,
        "query": f"{period.query()}&currency={currency}",
        "is_overview": slug == "overview",
        "time_zone": settings.TIME_ZONE,
    }
    return TemplateResponse(request, "analytics/report.html", context, status=400 if error else 200)
