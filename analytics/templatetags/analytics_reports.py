"""``{% top_line %}``: the reports' top line on the admin index (``templates/admin/index.html``)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from analytics.reports.top_line import top_line_figures
from analytics.selectors import currencies_seen
from core.money import to_decimal_string

register = template.Library()


@register.inclusion_tag("analytics/_top_line.html", takes_context=True)
def top_line(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return {"show": False}
    currency = currencies_seen()[0]
    return {"show": True, "f": top_line_figures(currency=currency, now=timezone.now())}


@register.filter
def minor_money(minor: int | None, currency: str) -> str:
    return f"{to_decimal_string(int(minor or 0), currency)} {currency}"
