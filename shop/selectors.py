"""Storefront reads: the products on sale, with their stock (``orders.stock`` owns it).

These are the catalog's pages' reads, not the catalog's: they need orders' stock figure, so
they sit in the storefront layer above orders (``pyproject.toml``'s contracts).
"""

from __future__ import annotations

from django.db.models import QuerySet

from orders.stock import with_stock
from shop.models import Product


def products_on_sale() -> QuerySet[Product]:
    return with_stock(Product.objects.filter(on_sale=True).select_related("category")).order_by(
        "category__sort_order", "sort_order", "name"
    )


def product_on_sale(slug: str) -> Product | None:
    return products_on_sale().filter(slug=slug).first()
