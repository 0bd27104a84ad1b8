"""The buyer's after-sales pages: the ticket form on the order page, "my orders" by email, and
"notify me when it is back" on a sold-out product."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.client_ip import client_ip
from core.errors import KamiError, RateLimited
from orders.access import grant_access, may_view, order_lookup
from orders.models import Order
from orders.support.my_orders import my_orders_email, my_orders_request, orders_of_email
from orders.support.restock import restock_subscribe
from orders.support.tickets import ticket_open
from shop.models import Product


@require_POST
def ticket_create(request: HttpRequest, order_no: str) -> HttpResponse:
    """The order page's form. The browser that holds the order needs nothing more; any other
    proves the email or query password, exactly like the lookup (and a miss counts there)."""
    order = Order.objects.select_related("product").filter(order_no=order_no).first()
    granted = order is not None and may_view(request, order)
    if not granted:
        secret = request.POST.get("email_or_password", "").strip()
        try:
            order = order_lookup(
                order_no=order_no,
                email=secret if "@" in secret else "",
                query_password=secret,
                ip=client_ip(request),
            )
        except RateLimited as exc:
            response = render(
                request,
                "orders/lookup.html",
                {"order_no": order_no, "error": exc.message},
                status=429,
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
        if order is None:
            return render(
                request,
                "orders/lookup.html",
                {
                    "order_no": order_no,
                    "error": _(
                        "No order matches that number and email or password. Check both and retry."
                    ),
                },
                status=404,
            )
    assert order is not None
    response = redirect(reverse("order-page", args=[order.order_no]) + "#tickets")
    try:
        ticket = ticket_open(
            order=order,
            kind=request.POST.get("kind", ""),
            message=request.POST.get("message", ""),
            client_ip=client_ip(request),
        )
    except KamiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Ticket %(ticket)s sent. The answer will appear here and reach you by message.")
            % {"ticket": ticket.ticket_no},
        )
    if not granted:
        grant_access(request, response, order.order_no)
    return response


@require_http_methods(["GET", "POST"])
def my_orders(request: HttpRequest) -> HttpResponse:
    """Ask for a link to one's orders. The answer is the same whether any exist."""
    context: dict = {"sent": False, "error": "", "email": ""}
    status = 200
    if request.method == "POST":
        context["email"] = request.POST.get("email", "").strip()[:254]
        try:
            my_orders_request(email=context["email"], ip=client_ip(request))
        except RateLimited as exc:
            context["error"], status = exc.message, 429
        except KamiError as exc:
            context["error"], status = exc.message, exc.status
        else:
            context["sent"] = True
    response = render(request, "orders/my_orders.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def my_orders_list(request: HttpRequest, token: str) -> HttpResponse:
    """The link's page: the email's orders, each opened in this browser from here."""
    email = my_orders_email(token)
    if email is None:
        response = render(request, "orders/my_orders.html", {"expired": True}, status=404)
        response["Cache-Control"] = "no-store"
        return response
    orders = orders_of_email(email)
    response = render(request, "orders/my_orders_list.html", {"orders": orders})
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's address
    for order in reversed(orders):
        grant_access(request, response, order.order_no)
    return response


@require_POST
def restock_notify(request: HttpRequest, slug: str) -> HttpResponse:
    """The sold-out product's "notify me" form."""
    product = Product.objects.filter(slug=slug).first()
    if product is None:
        return redirect("catalog")
    try:
        restock_subscribe(
            product=product, email=request.POST.get("email", ""), ip=client_ip(request)
        )
    except KamiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Thank you: we will email you once when it is back."))
    return redirect("product-page", slug=product.slug)
