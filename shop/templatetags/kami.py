from django import template

from core.money import exponent, to_decimal_string
from shop.rich_text import rich_text as _rich_text

register = template.Library()


@register.filter
def price(product) -> str:
    """A product's price as the buyer reads it: ``9.90 USD``."""
    return f"{to_decimal_string(product.price, product.currency)} {product.currency}"


@register.filter(is_safe=True)
def rich_text(text: str) -> str:
    """Owner-entered HTML, sanitised (``shop.rich_text``): the only way a description is shown."""
    return _rich_text(text)


@register.filter
def currency_exponent(currency: str) -> int:
    """Digits after the point in ``currency`` (2 for USD, 0 for JPY), for scripts that format
    an amount from its minor units (the product page's total)."""
    return exponent(currency)
