"""The buyer's pages reached from a follow-up: unsubscribe (RFC 8058) and the survey.

Both are opened by a signed token in the link, which is the whole authority: no session, and
no CSRF check on their POSTs (a mail client's one-click POST has neither cookie nor token).
GET never changes anything, so a link scanner that follows every URL unsubscribes nobody.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from orders.followups.models import SurveyResponse
from orders.followups.services import buyer_unsubscribe, survey_answer
from orders.followups.tokens import survey_order_no, unsubscribe_identity
from orders.models import Order, OrderStatus

ONE_CLICK = "List-Unsubscribe=One-Click"


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    identity = unsubscribe_identity(token)
    if identity is None:
        return _no_store(render(request, "orders/unsubscribe.html", {"invalid": True}, status=404))
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        buyer_unsubscribe(identity=identity, source="one-click" if one_click else "page")
        return _no_store(render(request, "orders/unsubscribe.html", {"done": True}))
    return _no_store(render(request, "orders/unsubscribe.html", {}))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    order_no = survey_order_no(token)
    order = (
        Order.objects.select_related("product").filter(order_no=order_no).first()
        if order_no
        else None
    )
    if order is None or order.status != OrderStatus.DELIVERED:
        return _no_store(render(request, "orders/survey.html", {"invalid": True}, status=404))
    context: dict = {"order": order, "scores": range(1, 6)}
    if request.method == "POST":
        try:
            score = int(request.POST.get("score", ""))
        except ValueError:
            score = 0
        comment = request.POST.get("comment", "").strip()
        if not 1 <= score <= 5:
            context.update(error=_("Choose a score from 1 to 5."), comment=comment[:2000])
            return _no_store(render(request, "orders/survey.html", context, status=400))
        survey_answer(order=order, score=score, comment=comment)
        context["done"] = True
        return _no_store(render(request, "orders/survey.html", context))
    previous = SurveyResponse.objects.filter(order=order).first()
    context.update(
        chosen=previous.score if previous else None,
        comment=previous.comment if previous else "",
    )
    return _no_store(render(request, "orders/survey.html", context))
