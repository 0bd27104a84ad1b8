from django import template

from core.money import to_decimal_string

register = template.Library()


@register.filter
def price(product) -> str:
    """A product's price as the buyer reads it: ``9.90 USD``."""
    return f"{to_decimal_string(product.price, product.currency)} {product.currency}"
