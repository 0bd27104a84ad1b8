"""Promoter pages: join, log in, the dashboard, withdrawals. Session-authenticated.

Every query here goes through ``commissions.selectors`` with ``request.user``'s own promoter:
no view takes another promoter's id, and the one that takes a withdrawal id answers 404 for
anything not the caller's.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from commissions.charts import earnings_chart_svg, qr_svg
from commissions.forms import JoinForm, WithdrawalForm
from commissions.middleware import referral_code
from commissions.models import CommissionSettings, Promoter
from commissions.selectors import (
    earnings_by_day,
    enabled_payout_methods,
    next_releases,
    promoter_balances,
    promoter_commissions,
    promoter_stats,
    promoter_team,
    promoter_withdrawal,
    promoter_withdrawals,
    referral_link,
)
from commissions.services import promoter_create, promoter_sign_up, withdrawal_request
from core.auth_forms import ThrottledAuthenticationForm
from core.errors import KamiError

LOGIN_URL = "/promoter/login"


class PromoterLoginView(LoginView):
    template_name = "commissions/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("commissions:dashboard")


def _own_promoter(request: HttpRequest) -> Promoter | None:
    return Promoter.objects.filter(user=request.user).select_related("upline").first()


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    """Anyone may apply; joining is free and pays nobody (only sales earn commissions)."""
    if request.user.is_authenticated and _own_promoter(request):
        return redirect("commissions:dashboard")
    conf = CommissionSettings.load()
    invited_by = request.GET.get("ref", "") or referral_code(request)
    form = JoinForm(request.POST or None, initial={"upline": invited_by})
    error = ""
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                promoter_create(user=request.user, upline_code=request.POST.get("upline", ""))
            elif form.is_valid():
                promoter = promoter_sign_up(
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    upline_code=form.cleaned_data["upline"],
                )
                login(request, promoter.user)
            else:
                error = _("Check the form: %(errors)s") % {
                    "errors": "; ".join(
                        f"{form.fields[name].label or name}: {' '.join(errs)}"
                        for name, errs in form.errors.items()
                    )
                }
        except KamiError as exc:
            error = exc.message
        if not error:
            return redirect("commissions:dashboard")
    return render(
        request,
        "commissions/join.html",
        {"form": form, "error": error, "approval_required": conf.approval_required},
        status=422 if error else 200,
    )


def _dashboard_context(promoter: Promoter, withdraw_form: WithdrawalForm) -> dict:
    conf = CommissionSettings.load()
    currency = conf.currency
    link = referral_link(promoter)
    stats = promoter_stats(promoter_id=promoter.pk)
    return {
        "promoter": promoter,
        "currency": currency,
        "link": link,
        "qr": qr_svg(link),
        "stats": stats,
        "conversion": f"{stats.conversion * 100:.1f}",
        "balances": promoter_balances(promoter_id=promoter.pk),
        "releases": next_releases(promoter_id=promoter.pk),
        "chart": earnings_chart_svg(earnings_by_day(promoter_id=promoter.pk), currency=currency),
        "commissions": promoter_commissions(promoter_id=promoter.pk, limit=50),
        "team": promoter_team(promoter_id=promoter.pk),
        "withdrawals": promoter_withdrawals(promoter_id=promoter.pk),
        "withdraw_form": withdraw_form,
        "min_withdrawal": conf.min_withdrawal,
        "hold_days": conf.hold_days,
        "window_days": conf.attribution_window_days,
    }


def _withdraw_form(data=None) -> WithdrawalForm:
    conf = CommissionSettings.load()
    return WithdrawalForm(data, methods=enabled_payout_methods(conf), currency=conf.currency)


@login_required(login_url=LOGIN_URL)
def dashboard(request: HttpRequest) -> HttpResponse:
    promoter = _own_promoter(request)
    if promoter is None:
        return redirect("commissions:join")
    response = render(
        request, "commissions/dashboard.html", _dashboard_context(promoter, _withdraw_form())
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required(login_url=LOGIN_URL)
@require_POST
def withdraw(request: HttpRequest) -> HttpResponse:
    promoter = _own_promoter(request)
    if promoter is None:
        return redirect("commissions:join")
    form = _withdraw_form(request.POST)
    error = ""
    if form.is_valid():
        try:
            withdrawal_request(
                promoter=promoter,
                amount=form.cleaned_data["amount"],
                method=form.cleaned_data["method"],
                account=form.cleaned_data["account"],
            )
        except KamiError as exc:
            error = exc.message
        else:
            messages.success(request, _("Withdrawal requested: the shop owner will pay it out."))
            return redirect(reverse("commissions:dashboard") + "#withdrawals")
    else:
        error = " ".join(" ".join(errs) for errs in form.errors.values())
    context = _dashboard_context(promoter, form)
    context["withdraw_error"] = error
    return render(request, "commissions/dashboard.html", context, status=422)


@login_required(login_url=LOGIN_URL)
def withdrawal_detail(request: HttpRequest, withdrawal_id: int) -> HttpResponse:
    promoter = _own_promoter(request)
    withdrawal = (
        promoter_withdrawal(promoter_id=promoter.pk, withdrawal_id=withdrawal_id)
        if promoter
        else None
    )
    if withdrawal is None:
        raise Http404("No such withdrawal")  # not yours looks exactly like unknown
    conf = CommissionSettings.load()
    return render(
        request,
        "commissions/withdrawal.html",
        {"withdrawal": withdrawal, "currency": conf.currency},
    )
