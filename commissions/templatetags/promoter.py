from django import template
from django.utils.translation import pgettext_lazy

from core.money import format_money

register = template.Library()


@register.filter
def money(minor: int, currency: str) -> str:
    """Minor units as the promoter reads them: ``1250|money:"USD"`` → ``12.50 USD``."""
    return format_money(minor, currency)


# A commission's status (``commissions.selectors.commission_status``) as the promoter reads it.
COMMISSION_STATUS_WORDS = {
    "pending": pgettext_lazy("commission status", "pending"),
    "available": pgettext_lazy("commission status", "available"),
    "partly_clawed_back": pgettext_lazy("commission status", "partly clawed back"),
    "clawed_back": pgettext_lazy("commission status", "clawed back"),
}


@register.filter
def words(value: str) -> str:
    """``partly_clawed_back`` → ``partly clawed back`` (in the promoter's language)."""
    value = str(value)
    return str(COMMISSION_STATUS_WORDS.get(value) or value.replace("_", " "))
