"""The order page's two buttons: "Reveal keys" (the owner, with a reason, recorded) and
"Resend keys to the buyer" (support, who never sees them).

Mounted by ``orders.admin.OrderAdmin`` behind ``admin_site.admin_view`` (an active staff
login, CSRF on POST). Who may press which is decided here, on the server, for every request:
a link the page does not show is still refused when typed in.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control

from core.client_ip import client_ip
from core.errors import InvalidInput
from core.roles import is_owner
from orders.models import KeyReveal, Order
from orders.resend import order_keys_resend
from orders.reveals import REASON_MAX, order_keys_reveal

RESEND_PERMISSION = "orders.resend_order_keys"


class RevealForm(forms.Form):
    reason = forms.CharField(
        label="Why do you need to see these keys?",
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "autocomplete": "off"}),
        help_text="Kept with the record of this reveal, with your name, the time and your IP.",
    )


def order_keys_reveal_view(request: HttpRequest, *, order_id: int, admin_site: AdminSite):
    """GET: the reason form. POST: record the reveal and show the keys, on this response
    only: it is marked no-store, and the plain order page never shows them."""
    if not is_owner(request.user):
        raise PermissionDenied
    order = get_object_or_404(Order.objects.select_related("product"), pk=order_id)
    form = RevealForm(request.POST or None)
    keys: list[str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            revealed = order_keys_reveal(
                order=order,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                client_ip=client_ip(request),
            )
        except InvalidInput as exc:
            form.add_error("reason", exc.message)
        else:
            keys = revealed.keys
    context = {
        **admin_site.each_context(request),
        "title": f"Reveal keys: order {order.order_no}",
        "subtitle": None,
        "opts": Order._meta,
        "original": order,
        "order": order,
        "form": form,
        "keys": keys,
        "previous": KeyReveal.objects.filter(order=order)[:10],
        "has_view_permission": True,
    }
    response = TemplateResponse(request, "admin/orders/order/reveal_keys.html", context)
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


def order_keys_resend_view(request: HttpRequest, *, order_id: int) -> HttpResponse:
    """POST only: queue the delivery email to the buyer again, then back to the order page."""
    if not request.user.has_perm(RESEND_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    outcome = order_keys_resend(order_id=order_id, actor=request.user)
    messages.add_message(
        request, messages.SUCCESS if outcome.queued else messages.WARNING, outcome.message
    )
    return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order_id]))
