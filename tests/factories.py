"""factory_boy factories for the domain models."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from cardpool.crypto import encrypt_secret, fingerprint
from cardpool.models import CardKey
from cardpool.reservation import keys_reserve
from core.identity import email_identity
from orders.models import Order
from orders.order_numbers import new_order_no
from shop.models import Category, Product


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    slug = factory.Sequence(lambda n: f"product-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    description = "A test product."
    price = 990
    currency = "USD"
    max_per_order = 10


class CardKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardKey
        exclude = ("plaintext",)

    product = factory.SubFactory(ProductFactory)
    plaintext = factory.Sequence(lambda n: f"KEY-{n:08d}")
    secret = factory.LazyAttribute(lambda o: encrypt_secret(o.plaintext))
    fingerprint = factory.LazyAttribute(lambda o: fingerprint(o.plaintext))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        skip_postgeneration_save = True

    order_no = factory.LazyFunction(new_order_no)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = factory.LazyAttribute(lambda o: o.product.price)
    amount = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)
    currency = factory.LazyAttribute(lambda o: o.product.currency)
    email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    buyer_identity = factory.LazyAttribute(lambda o: email_identity(o.email))
    client_ip = "203.0.113.10"
    hold_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))

    @factory.post_generation
    def reserve(obj, create, extracted, **kwargs):
        """A pending order inside its hold holds its keys, as a checkout would have reserved
        them (as many as are free). ``reserve=False`` makes one that reserved nothing."""
        if not create or extracted is False:
            return
        now = timezone.now()
        if obj.status == "pending" and obj.hold_expires_at > now:
            keys_reserve(
                order_id=obj.pk,
                product_id=obj.product_id,
                quantity=obj.quantity,
                until=obj.hold_expires_at,
                now=now,
            )


def stock_product(n_keys: int, **product_kwargs) -> Product:
    """A product with ``n_keys`` available keys named ``<slug>-KEY-<i>``."""
    product = ProductFactory(**product_kwargs)
    CardKey.objects.bulk_create(
        [
            CardKey(
                product=product,
                secret=encrypt_secret(f"{product.slug}-KEY-{i}"),
                fingerprint=fingerprint(f"{product.slug}-KEY-{i}"),
            )
            for i in range(n_keys)
        ]
    )
    return product
