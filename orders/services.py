"""Order writes: checkout (order_create), expiry and cancellation.

Lock order — every transaction in Kami takes its locks in this order, so none can deadlock:

    buyer advisory locks (email, IP; checkout only)
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

No network call is made while any of these are held: the payment provider is called after
``order_create`` commits (``checkout_start``), and emails go out after the delivery commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cardpool.reservation import keys_reserve
from cardpool.selectors import free_key_count
from commissions.attribution import order_attribute
from core.errors import Blocked, InvalidInput, NotFound, OutOfStock, TooManyUnpaid
from core.identity import email_identity
from orders.events import OrderEventKind, event_order_created, event_risk_noted
from orders.live import order_created
from orders.locks import lock_buyer, lock_order, lock_product
from orders.models import Order, OrderStatus
from orders.order_numbers import new_order_no
from orders.priority import is_priority_checkout
from orders.query_passwords import query_password_hash
from orders.risk import CheckoutContext, risk_control
from orders.stock import backorder_demand, product_stock
from orders.transitions import order_transition
from shop.models import Product, ShopSettings

MAX_QUERY_PASSWORD = 128


@dataclass(frozen=True)
class CheckoutRequest:
    product: str
    quantity: int
    email: str
    query_password: str = field(default="", repr=False)  # never in a log line or traceback
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
    return product, email


def _check_unpaid_limits(
    *, shop: ShopSettings, identity: str, client_ip: str | None, now: datetime
) -> None:
    """Nobody may lock up the shop's stock: cap unpaid orders per email and per client IP.
    Called under the buyer's advisory locks, so concurrent checkouts count each other."""
    unpaid = Order.objects.filter(status=OrderStatus.PENDING, hold_expires_at__gt=now)
    if unpaid.filter(buyer_identity=identity).count() >= shop.max_unpaid_per_email:
        raise TooManyUnpaid(
            _(
                "This email already has %(count)d unpaid orders: pay or wait for one to expire first."  # noqa: E501
            )
            % {"count": shop.max_unpaid_per_email}
        )
    if client_ip and unpaid.filter(client_ip=client_ip).count() >= shop.max_unpaid_per_ip:
        raise TooManyUnpaid(
            _(
                "This network already has %(count)d unpaid orders: "
                "pay or wait for one to expire first."
            )
            % {"count": shop.max_unpaid_per_ip}
        )


def _out_of_stock(product_id: int, now: datetime, *, reserved_here: int = 0) -> OutOfStock:
    # Keys this refused checkout reserved a moment ago go back when its transaction rolls back.
    stock = product_stock(product_id, now=now) + reserved_here
    if stock:
        return OutOfStock(_("Only %(count)d left.") % {"count": stock})
    return OutOfStock(_("Sold out: no keys are left right now."))


def _reserve_stock(*, order: Order, now: datetime) -> None:
    """Reserve the order's keys for its hold, or raise ``OutOfStock`` (the caller's transaction
    then rolls back, the order with it). Backorders waiting for this product are owed free
    keys first: then the line keeper is taken and the free keys counted."""
    owed = backorder_demand(order.product_id)
    if owed:
        lock_product(order.product_id)
        if free_key_count(order.product_id, now=now) - owed < order.quantity:
            raise _out_of_stock(order.product_id, now)
    reserved = keys_reserve(
        order_id=order.pk,
        product_id=order.product_id,
        quantity=order.quantity,
        until=order.hold_expires_at,
        now=now,
    )
    if reserved < order.quantity:
        raise _out_of_stock(order.product_id, now, reserved_here=reserved)


def order_create(*, req: CheckoutRequest) -> Order:
    """Create a pending order that reserves ``quantity`` keys for the unpaid window.

    Refuses (changing nothing) when the buyer already holds the most unpaid orders allowed per
    email or per IP, or when not enough free keys are left.
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
    try:
        with transaction.atomic():
            lock_buyer(f"email:{identity}", f"ip:{req.client_ip or ''}")
            decisions = risk.screen_checkout(ctx=ctx)
            _check_unpaid_limits(shop=shop, identity=identity, client_ip=req.client_ip, now=now)
            order = Order.objects.create(
                order_no=new_order_no(),
                product=product,
                quantity=req.quantity,
                unit_price=product.price,
                amount=product.price * req.quantity,
                currency=product.currency,
                email=email,
                buyer_identity=identity,
                query_password_hash=(
                    query_password_hash(req.query_password) if req.query_password else ""
                ),
                client_ip=req.client_ip,
                user_agent=(req.user_agent or "")[:400],
                ref_code=(req.ref or "").strip().upper()[:32],
                buyer_user_id=req.user_id,
                hold_expires_at=now + timedelta(minutes=shop.hold_minutes),
                priority=priority,
                language=order_language(req.language),
            )
            _reserve_stock(order=order, now=now)
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
    """Expire pending orders whose hold has lapsed (periodic). Returns how many expired."""
    ids = list(
        Order.objects.filter(status=OrderStatus.PENDING, hold_expires_at__lte=timezone.now())
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(order_expire(order_id=pk) for pk in ids)
