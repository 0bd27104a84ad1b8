"""Order writes: checkout (order_create), expiry and cancellation.

Lock order — every transaction in Kami takes its locks in this order, so none can deadlock:

    buyer advisory locks (email, IP, network; checkout only)
    → hold stripes   (orders.locks.lock_hold_stripe*: checkout only; one free stripe far
                      below the product's hold cap, all of them near it — orders.holds)
    → payment event  (orders.locks.lock_payment_event)
    → order          (orders.locks.lock_order*: the order row only, never its product)
    → card keys      (cardpool.reservation: the order's own reserved rows, then free rows
                      picked with SKIP LOCKED, which never wait)
    → product        (orders.locks.lock_product: the line keeper, taken only when backorders
                      or a lost reservation make line order matter)
    → commission ledger

Stock is contended key by key: a checkout reserves free key rows for its order, a payment
sells the rows its order reserved. So checkouts and deliveries of one product run in parallel,
and the product row is not a hot spot. Keys picked with SKIP LOCKED never wait, so a
transaction holding the line keeper cannot be waiting on a key row another one holds.

Holds cannot be hoarded (``orders.holds``): unpaid orders together hold at most the owner's
share of a product's keys; beyond it checkout takes the order without a hold and whoever pays
first gets the keys. Unpaid orders are also capped per email, per address and per network.

No network call is made while any of these are held: the payment provider is called after
``order_create`` commits (``checkout_start``), and emails go out after the delivery commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from commissions.attribution import order_attribute
from core.client_ip import client_network
from core.errors import Blocked, InvalidInput, NotFound, TooManyUnpaid
from core.identity import email_identity
from orders.delivery import backorders_deliver
from orders.events import OrderEventKind, event_order_created, event_risk_noted
from orders.holds import order_hold_keys
from orders.live import order_created
from orders.locks import lock_buyer, lock_order
from orders.models import Order, OrderStatus
from orders.order_numbers import new_order_no
from orders.priority import is_priority_checkout
from orders.query_passwords import query_password_hash
from orders.risk import CheckoutContext, risk_control
from orders.stock import backorder_demand
from orders.transitions import order_transition
from shop.models import Product, ShopSettings

MAX_QUERY_PASSWORD = 128
# E.164: a plus, a country code and the number, at most 15 digits. For SMS messages only.
PHONE_PATTERN = re.compile(r"\+[1-9][0-9]{6,14}")


def normalise_phone(phone: str) -> str:
    """``"+1 (555) 123-4567"`` as ``"+15551234567"``; "" for none; InvalidInput otherwise."""
    compact = re.sub(r"[\s().-]", "", phone or "")
    if compact and not PHONE_PATTERN.fullmatch(compact):
        raise InvalidInput(
            "Enter the phone number with its country code, e.g. +15551234567, or leave it empty."
        )
    return compact


@dataclass(frozen=True)
class CheckoutRequest:
    product: str
    quantity: int
    email: str
    query_password: str = field(default="", repr=False)  # never in a log line or traceback
    phone: str = ""
    ref: str = ""
    variant: str = ""
    coupon: str = ""
    client_ip: str | None = None
    user_agent: str = ""
    user_id: int | None = None
    language: str = ""  # the buyer's (request.LANGUAGE_CODE): their emails speak it


def order_language(code: str) -> str:
    """A language the shop speaks, from the checkout's: an unknown one is the default."""
    try:
        return translation.get_supported_language_variant(code or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _validate(req: CheckoutRequest) -> tuple[Product, str]:
    email = normalise_email(req.email or "")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid email address: your keys are sent there.")) from None
    product = Product.objects.filter(slug=req.product or "", on_sale=True).first()
    if product is None:
        raise NotFound(_("No such product is on sale."))
    if not isinstance(req.quantity, int) or req.quantity < 1:
        raise InvalidInput(_("Quantity must be at least 1."))
    if req.quantity > product.max_per_order:
        raise InvalidInput(
            _("At most %(max)d per order for this product.") % {"max": product.max_per_order}
        )
    if req.variant:
        raise InvalidInput(f"Unknown variant '{req.variant}' for this product.", code="invalid")
    if req.coupon:
        raise InvalidInput(f"Unknown coupon '{req.coupon}'.", code="invalid")
    if len(req.query_password or "") > MAX_QUERY_PASSWORD:
        raise InvalidInput(
            _("The query password may be at most %(max)d characters.") % {"max": MAX_QUERY_PASSWORD}
        )
    normalise_phone(req.phone)
    return product, email


def _check_unpaid_limits(
    *, shop: ShopSettings, identity: str, client_ip: str | None, network: str, now: datetime
) -> None:
    """Nobody may lock up the shop's stock: cap unpaid orders per email, per client address
    and per network (IPv4 /24, IPv6 /64: a client changes its address within those for free).
    Called under the buyer's advisory locks, so concurrent checkouts count each other."""
    by_email = Q(buyer_identity=identity)
    by_address = Q(client_ip=client_ip) if client_ip else Q(pk__in=[])
    by_network = Q(client_network=network) if network else Q(pk__in=[])
    counts = Order.objects.filter(
        by_email | by_address | by_network, status=OrderStatus.PENDING, hold_expires_at__gt=now
    ).aggregate(  # one query for the three limits
        email=Count("pk", filter=by_email),
        address=Count("pk", filter=by_address),
        network=Count("pk", filter=by_network),
    )
    if counts["email"] >= shop.max_unpaid_per_email:
        raise TooManyUnpaid(
            _(
                "This email already has %(count)d unpaid orders: pay or wait for one to expire first."  # noqa: E501
            )
            % {"count": shop.max_unpaid_per_email}
        )
    if counts["address"] >= shop.max_unpaid_per_ip:
        raise TooManyUnpaid(
            _(
                "Your address already has %(count)d unpaid orders: "
                "pay or wait for one to expire first."
            )
            % {"count": shop.max_unpaid_per_ip}
        )
    if counts["network"] >= shop.max_unpaid_per_network:
        raise TooManyUnpaid(
            _(
                "Your network already has %(count)d unpaid orders: "
                "pay or wait for one to expire first."
            )
            % {"count": shop.max_unpaid_per_network}
        )


def order_create(*, req: CheckoutRequest) -> Order:
    """Create a pending order for ``quantity`` keys, holding them for the unpaid window when
    the product's hold share allows (``orders.holds``; ``Order.holds_keys`` says which).

    Refuses (changing nothing) when the buyer already has the most unpaid orders allowed per
    email, address or network, or when fewer keys than asked are left to sell at all.
    """
    risk = risk_control()
    risk.throttle_checkout(client_ip=req.client_ip)
    product, email = _validate(req)
    identity = email_identity(email)
    shop = ShopSettings.load()
    now = timezone.now()
    ctx = CheckoutContext(
        product_id=product.pk,
        quantity=req.quantity,
        amount=product.price * req.quantity,
        email=email,
        client_ip=req.client_ip,
    )
    # Outside the transaction: a delivered order of this buyer is a fact no lock protects,
    # and the checkout's locks are held no longer for it.
    priority = is_priority_checkout(
        amount=ctx.amount, priority_amount=shop.priority_amount, identity=identity
    )
    network = client_network(req.client_ip)
    try:
        with transaction.atomic():
            lock_buyer(f"email:{identity}", f"ip:{req.client_ip or ''}", f"net:{network}")
            decisions = risk.screen_checkout(ctx=ctx)
            _check_unpaid_limits(
                shop=shop, identity=identity, client_ip=req.client_ip, network=network, now=now
            )
            order = Order.objects.create(
                order_no=new_order_no(),
                product=product,
                quantity=req.quantity,
                unit_price=product.price,
                amount=product.price * req.quantity,
                currency=product.currency,
                email=email,
                phone=normalise_phone(req.phone),
                buyer_identity=identity,
                query_password_hash=(
                    query_password_hash(req.query_password) if req.query_password else ""
                ),
                client_ip=req.client_ip,
                client_network=network,
                user_agent=(req.user_agent or "")[:400],
                ref_code=(req.ref or "").strip().upper()[:32],
                buyer_user_id=req.user_id,
                hold_expires_at=now + timedelta(minutes=shop.hold_minutes),
                priority=priority,
                language=order_language(req.language),
            )
            if not order_hold_keys(order=order, shop=shop, now=now):
                Order.objects.filter(pk=order.pk).update(holds_keys=False)
                order.holds_keys = False
            event_order_created(order)
            risk.checkout_screened(order=order, ctx=ctx, decisions=decisions)
            for decision in decisions:
                event_risk_noted(order, decision)
            order_attribute(order=order)
            order_created(order)  # the owner's live feed, once this commits
    except Blocked as exc:
        risk.checkout_refused(ctx=ctx, error=exc)
        raise
    return order


def order_expire(*, order_id: int, reason: str = "Unpaid when its window closed.") -> bool:
    """Expire one pending order whose hold has lapsed. Idempotent; False if nothing to do."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order is None or order.status != OrderStatus.PENDING:
            return False
        if order.hold_expires_at > timezone.now():
            return False
        order_transition(
            order=order, to_status=OrderStatus.EXPIRED, kind=OrderEventKind.EXPIRED, message=reason
        )
        return True


def orders_expire_lapsed(*, limit: int = 500) -> int:
    """Expire pending orders whose hold has lapsed (periodic). Returns how many expired.

    A lapsed hold's keys are free again: paid backorders of its product (buyers who paid
    while every key was held, say) are served from them now rather than at the next sweep.
    """
    rows = list(
        Order.objects.filter(status=OrderStatus.PENDING, hold_expires_at__lte=timezone.now())
        .order_by("pk")
        .values_list("pk", "product_id", "holds_keys")[:limit]
    )
    expired = 0
    released: set[int] = set()
    for pk, product_id, held in rows:
        if order_expire(order_id=pk):
            expired += 1
            if held:
                released.add(product_id)
    for product_id in sorted(released):
        if backorder_demand(product_id):
            backorders_deliver(product_id=product_id)
    return expired
