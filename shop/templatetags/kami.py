from django import template

from core.money import exponent, format_money, money_affixes
from shop.rich_text import rich_text as _rich_text

register = template.Library()


@register.filter
def price(product) -> str:
    """A product's price as the buyer reads it: ``9.90 USD``, in Chinese ``US$9.90``."""
    return format_money(product.price, product.currency)


@register.filter(is_safe=True)
def rich_text(text: str) -> str:
    """Owner-entered HTML, sanitised (``shop.rich_text``): the only way a description is shown."""
    return _rich_text(text)


@register.filter
def currency_exponent(currency: str) -> int:
    """Digits after the point in ``currency`` (2 for USD, 0 for JPY), for scripts that format
    an amount from its minor units (the product page's total)."""
    return exponent(currency)


@register.filter
def money(minor: int, currency: str) -> str:
    """Minor units for the active language: ``1250|money:"USD"`` → ``12.50 USD``."""
    return format_money(minor, currency)


@register.filter
def money_prefix(currency: str) -> str:
    """What ``format_money`` writes before the amount in the active language (``US$`` or "")."""
    return money_affixes(currency)[0]


@register.filter
def money_suffix(currency: str) -> str:
    """What ``format_money`` writes after the amount in the active language (`` USD`` or "")."""
    return money_affixes(currency)[1]
