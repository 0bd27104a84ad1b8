"""Storefront pages: catalog, product page and its checkout form."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from commissions.middleware import referral_code
from core.client_ip import client_ip
from core.errors import KamiError
from orders.access import grant_access
from orders.holds import keys_free_and_held
from orders.models import Order
from orders.outbox.services import messaging_plan
from orders.payments.providers import checkout_start
from orders.services import CheckoutRequest, order_create
from shop.models import Category, ShopSettings
from shop.selectors import product_on_sale, products_on_sale


def catalog(request: HttpRequest) -> HttpResponse:
    products = list(products_on_sale())
    categories: dict[Category | None, list] = {}
    for product in products:
        categories.setdefault(product.category, []).append(product)
    return render(request, "shop/catalog.html", {"categories": categories.items()})


@require_http_methods(["GET", "POST"])
def product_page(request: HttpRequest, slug: str) -> HttpResponse:
    product = product_on_sale(slug)
    if product is None:
        raise Http404("No such product")
    form = {"email": "", "quantity": 1, "query_password": "", "phone": ""}
    error = None
    status = 200
    if request.method == "POST":
        form = {
            "email": request.POST.get("email", "").strip(),
            "quantity": request.POST.get("quantity", "1"),
            "query_password": request.POST.get("query_password", ""),
            "phone": request.POST.get("phone", "").strip(),
        }
        quantity = form_quantity(form["quantity"])
        try:
            order = order_create(
                req=CheckoutRequest(
                    product=slug,
                    quantity=quantity,
                    email=form["email"],
                    query_password=form["query_password"],
                    phone=form["phone"],
                    ref=referral_code(request),
                    client_ip=client_ip(request),
                    user_agent=request.headers.get("User-Agent", ""),
                    user_id=request.user.pk if request.user.is_authenticated else None,
                    language=get_language(),
                )
            )
            pay_url = checkout_start(order=order, base_url=request.build_absolute_uri("/"))
        except KamiError as exc:
            error, status = exc.message, exc.status
        else:
            response = (
                redirect(pay_url) if order.holds_keys else _no_hold_page(request, order, pay_url)
            )
            grant_access(request, response, order.order_no)
            return response
    return render(
        request,
        "shop/product.html",
        {
            "product": product,
            "form": form,
            "error": error,
            "offers_sms": bool(settings.SMS_BACKEND) and "sms" in messaging_plan(product.pk).chain,
        },
        status=status,
    )


def form_quantity(raw: str) -> int:
    """The form's quantity as plain ASCII digits, else 0 (refused as "at least 1"). ``int()``
    alone reads ``"1_0"`` as 10 and ``"１０"`` (full-width) as 10; the API is as strict."""
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0


def _no_hold_page(request: HttpRequest, order: Order, pay_url: str) -> HttpResponse:
    """Before a buyer without a hold pays, tell them so: keys go to whoever pays first, and
    what happens if none is left (``orders.holds``). The pay link is only on this page."""
    free, held = keys_free_and_held(product_id=order.product_id, now=timezone.now())
    shop = ShopSettings.load()
    response = render(
        request,
        "shop/no_hold.html",
        {
            "order": order,
            "product": order.product,
            "pay_url": pay_url,
            "free": free,
            "free_enough": free >= order.quantity,
            "held": held,
            "hold_minutes": shop.hold_minutes,
            "refund_hours": shop.backorder_refund_after_hours,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and compose: the database answers."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
