from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(minor: int, currency: str) -> str:
    """Minor units as the promoter reads them: ``1250|money:"USD"`` → ``12.50 USD``."""
    return format_money(minor, currency)


@register.filter
def words(value: str) -> str:
    """``partly_clawed_back`` → ``partly clawed back``."""
    return str(value).replace("_", " ")
