"""Order writes: checkout (order_create), expiry and cancellation.

Lock order — every transaction in Kami takes its locks in this order, so none can deadlock:

    buyer advisory locks (email, IP; checkout only)
    → payment event  (orders.locks.lock_payment_event)
    → order          (orders.locks.lock_order*)
    → product        (orders.locks.lock_product: the stock gate)
    → card keys      (cardpool.reservation: SKIP LOCKED)
    → commission ledger

No network call is made while any of these are held: the payment provider is called after
``order_create`` commits (``checkout_start``), and emails go out after the delivery commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from commissions import hooks as commission_hooks
from orders.locks import lock_buyer, lock_order, lock_product
from orders.models import Order, OrderEvent, OrderStatus
from orders.order_numbers import new_order_no
from orders.transitions import order_transition
from riskrules import hooks as risk_hooks
from shop.errors import Blocked, InvalidInput, NotFound, OutOfStock, TooManyUnpaid
from shop.identity import email_identity
from shop.models import Product, ShopSettings
from shop.selectors import product_stock

MAX_QUERY_PASSWORD = 128


@dataclass(frozen=True)
class CheckoutRequest:
    product: str
    quantity: int
    email: str
    query_password: str = ""
    ref: str = ""
    variant: str = ""
    coupon: str = ""
    client_ip: str | None = None
    user_agent: str = ""
    user_id: int | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _validate(req: CheckoutRequest) -> tuple[Product, str]:
    email = normalise_email(req.email or "")
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address: your keys are sent there.") from None
    product = Product.objects.filter(slug=req.product or "", on_sale=True).first()
    if product is None:
        raise NotFound("No such product is on sale.")
    if not isinstance(req.quantity, int) or req.quantity < 1:
        raise InvalidInput("Quantity must be at least 1.")
    if req.quantity > product.max_per_order:
        raise InvalidInput(f"At most {product.max_per_order} per order for this product.")
    if req.variant:
        raise InvalidInput(f"Unknown variant '{req.variant}' for this product.", code="invalid")
    if req.coupon:
        raise InvalidInput(f"Unknown coupon '{req.coupon}'.", code="invalid")
    if len(req.query_password or "") > MAX_QUERY_PASSWORD:
        raise InvalidInput(f"The query password may be at most {MAX_QUERY_PASSWORD} characters.")
    return product, email


def _check_unpaid_limits(
    *, shop: ShopSettings, identity: str, client_ip: str | None, now: datetime
) -> None:
    """Nobody may lock up the shop's stock: cap unpaid orders per email and per client IP.
    Called under the buyer's advisory locks, so concurrent checkouts count each other."""
    unpaid = Order.objects.filter(status=OrderStatus.PENDING, hold_expires_at__gt=now)
    if unpaid.filter(buyer_identity=identity).count() >= shop.max_unpaid_per_email:
        raise TooManyUnpaid(
            f"This email already has {shop.max_unpaid_per_email} unpaid orders: "
            "pay or wait for one to expire first."
        )
    if client_ip and unpaid.filter(client_ip=client_ip).count() >= shop.max_unpaid_per_ip:
        raise TooManyUnpaid(
            f"This network already has {shop.max_unpaid_per_ip} unpaid orders: "
            "pay or wait for one to expire first."
        )


def order_create(*, req: CheckoutRequest) -> Order:
    """Create a pending order that holds ``quantity`` keys for the unpaid window.

    Refuses (changing nothing) when the buyer already holds the most unpaid orders allowed per
    email or per IP, or when stock after everyone else's holds is short.
    """
    risk_hooks.throttle_checkout(client_ip=req.client_ip)
    product, email = _validate(req)
    identity = email_identity(email)
    shop = ShopSettings.load()
    now = timezone.now()
    ctx = risk_hooks.CheckoutContext(
        product_id=product.pk,
        quantity=req.quantity,
        amount=product.price * req.quantity,
        email=email,
        client_ip=req.client_ip,
    )
    try:
        with transaction.atomic():
            lock_buyer(f"email:{identity}", f"ip:{req.client_ip or ''}")
            risk_hits = risk_hooks.screen_checkout(ctx=ctx)
            _check_unpaid_limits(shop=shop, identity=identity, client_ip=req.client_ip, now=now)
            lock_product(product.pk)
            stock = product_stock(product.pk, now=now)
            if stock < req.quantity:
                raise OutOfStock(
                    f"Only {stock} left." if stock else "Sold out: no keys are left right now."
                )
            order = Order.objects.create(
                order_no=new_order_no(),
                product=product,
                quantity=req.quantity,
                unit_price=product.price,
                amount=product.price * req.quantity,
                currency=product.currency,
                email=email,
                buyer_identity=identity,
                query_password_hash=make_password(req.query_password) if req.query_password else "",
                client_ip=req.client_ip,
                user_agent=(req.user_agent or "")[:400],
                ref_code=(req.ref or "").strip().upper()[:32],
                buyer_user_id=req.user_id,
                hold_expires_at=now + timedelta(minutes=shop.hold_minutes),
            )
            OrderEvent.objects.create(
                order=order,
                kind="created",
                to_status=OrderStatus.PENDING,
                data={"quantity": order.quantity, "amount": order.amount},
            )
            risk_hooks.checkout_screened(order=order, ctx=ctx, hits=risk_hits)
            commission_hooks.attribute_order(order=order)
    except Blocked as exc:
        risk_hooks.checkout_refused(ctx=ctx, error=exc)
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
        order_transition(order=order, to_status=OrderStatus.EXPIRED, message=reason)
        return True


def orders_expire_lapsed(*, limit: int = 500) -> int:
    """Expire pending orders whose hold has lapsed (periodic). Returns how many expired."""
    ids = list(
        Order.objects.filter(status=OrderStatus.PENDING, hold_expires_at__lte=timezone.now())
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(order_expire(order_id=pk) for pk in ids)
