from django import template

from core.money import format_money
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
def money(minor: int, currency: str) -> str:
    """Minor units for the active language: ``1250|money:"USD"`` → ``12.50 USD``."""
    return format_money(minor, currency)
