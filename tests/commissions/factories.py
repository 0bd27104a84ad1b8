"""factory_boy factories for promoters and the ledger (commissions tests)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from commissions.models import Promoter


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-Secret-123")


class PromoterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Promoter

    user = factory.SubFactory(UserFactory)
    code = factory.Sequence(lambda n: f"P{n:04d}")
    status = Promoter.Status.ACTIVE
