"""Payment providers: where the buyer is sent to pay.

``stripe`` creates a Checkout Session (card, plus Alipay / WeChat Pay where the currency allows
them); ``sandbox`` is a local page whose Pay button signs a Stripe-format event with the webhook
secret and hands it to the same inbox a real Stripe event reaches. The provider is called after
the order is committed and while no lock is held: a slow Stripe never blocks the stock gate.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import PaymentProviderError, PaymentUnavailable
from orders.events import OrderEventKind
from orders.models import Order, OrderStatus
from orders.transitions import order_transition

logger = logging.getLogger(__name__)

# Stripe accepts these payment methods only in some presentment currencies.
ALIPAY_CURRENCIES = frozenset(
    {"CNY", "AUD", "CAD", "EUR", "GBP", "HKD", "JPY", "MYR", "NZD", "SGD", "USD"}
)
WECHAT_PAY_CURRENCIES = frozenset(
    {"CNY", "AUD", "CAD", "EUR", "GBP", "HKD", "JPY", "SGD", "USD", "DKK", "NOK", "SEK", "CHF"}
)
STRIPE_MIN_SESSION_MINUTES = 30


def payment_methods_for(currency: str) -> list[str]:
    methods = ["card"]
    if currency in ALIPAY_CURRENCIES:
        methods.append("alipay")
    if currency in WECHAT_PAY_CURRENCIES:
        methods.append("wechat_pay")
    return methods


def _stripe_checkout(order: Order, base_url: str) -> tuple[str, str]:
    order_url = f"{base_url}{reverse('order-page', args=[order.order_no])}"
    methods = payment_methods_for(order.currency)
    params = {
        "mode": "payment",
        "client_reference_id": order.order_no,
        "metadata": {"order_no": order.order_no},
        "payment_intent_data": {"metadata": {"order_no": order.order_no}},
        "customer_email": order.email,
        "payment_method_types": methods,
        "line_items": [
            {
                "quantity": order.quantity,
                "price_data": {
                    "currency": order.currency.lower(),
                    "unit_amount": order.unit_price,
                    "product_data": {"name": order.product.name},
                },
            }
        ],
        "success_url": f"{order_url}?paid=1",
        "cancel_url": order_url,
        "expires_at": int(
            (timezone.now() + timedelta(minutes=STRIPE_MIN_SESSION_MINUTES + 1)).timestamp()
        ),
    }
    if "wechat_pay" in methods:
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    session = stripe.checkout.Session.create(
        api_key=settings.STRIPE_SECRET_KEY, idempotency_key=f"checkout-{order.order_no}", **params
    )
    return session["id"], session["url"]


def checkout_start(*, order: Order, base_url: str | None = None) -> str:
    """Return the URL where the buyer pays ``order``. Call after the order is committed.

    ``base_url`` is the shop's address as the buyer reached it (``SITE_URL`` by default).
    """
    base_url = (base_url or settings.SITE_URL).rstrip("/")
    if settings.PAYMENT_PROVIDER == "stripe":
        try:
            session_id, url = _stripe_checkout(order, base_url)
        except stripe.StripeError as exc:
            logger.error("Stripe checkout failed for %s: %s", order.order_no, type(exc).__name__)
            order_transition(
                order=order,
                to_status=OrderStatus.CANCELLED,
                kind=OrderEventKind.CANCELLED,
                message="The payment provider could not start checkout.",
            )
            raise PaymentProviderError(
                _("The payment provider is not answering; nothing was charged. Try again shortly.")
            ) from None
        Order.objects.filter(pk=order.pk).update(
            payment_provider="stripe", checkout_session_id=session_id
        )
        order.checkout_session_id = session_id
        return url
    if not settings.SANDBOX_PAYMENTS_ENABLED:
        order_transition(
            order=order,
            to_status=OrderStatus.CANCELLED,
            kind=OrderEventKind.CANCELLED,
            message="No payment provider set up.",
        )
        raise PaymentUnavailable(_("This shop has no payment provider configured yet."))
    return f"{base_url}{reverse('sandbox-pay', args=[order.order_no])}"
