"""Risk-control fixtures: the default rules present in every test (a transactional test
elsewhere may have flushed what the migration seeded), and checkout/payment helpers."""

from __future__ import annotations

import pytest
from django.conf import settings

from orders.models import Order
from orders.payments.inbox import payment_event_receive
from orders.payments.stripe_events import encode, sign_payload
from orders.services import CheckoutRequest, order_create
from riskrules.models import RiskRule
from riskrules.services import rules_seed_defaults
from shop.models import ShopSettings
from tests.stripe_helpers import completed_event

IP = "198.51.100.7"


@pytest.fixture(autouse=True)
def default_rules(request):
    if "django_db" in request.keywords or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("_django_db_helper")
        rules_seed_defaults()


@pytest.fixture
def roomy_unpaid_limits():
    """The shop's own unpaid-order limits (2 per email/IP, 4 per network) would refuse
    before velocity."""
    ShopSettings.objects.update_or_create(
        pk=1,
        defaults={
            "max_unpaid_per_email": 1000,
            "max_unpaid_per_ip": 1000,
            "max_unpaid_per_network": 1000,
        },
    )


def rule(name_part: str) -> RiskRule:
    return RiskRule.objects.get(name__icontains=name_part)


def only_rules(*rules: RiskRule) -> None:
    """Switch every rule off except these (so a test sees one rule at a time)."""
    RiskRule.objects.exclude(pk__in=[r.pk for r in rules]).update(enabled=False)
    RiskRule.objects.filter(pk__in=[r.pk for r in rules]).update(enabled=True)


def checkout(
    product: str = "p",
    *,
    quantity: int = 1,
    email: str = "buyer@example.com",
    ip: str | None = IP,
) -> Order:
    return order_create(
        req=CheckoutRequest(product=product, quantity=quantity, email=email, client_ip=ip)
    )


def pay(order: Order) -> None:
    """A signed checkout.session.completed through the real inbox (processing runs after
    commit: wrap in ``django_capture_on_commit_callbacks(execute=True)`` in atomic tests)."""
    payload = encode(completed_event(order))
    payment_event_receive(
        payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
    )
