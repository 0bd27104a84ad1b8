"""The enrolment page, ``/admin/two-factor/`` (``core.admin_site`` wires it up).

Without a second factor: a QR code and the secret as text, then a form for the first code,
which confirms the device and shows ten recovery codes once (the response is ``no-store``).
With one (and a session opened with it): how many recovery codes are left, new codes, or a new
authenticator app in place of the old one. A session opened *without* the code, by someone who
has one, may change nothing here and is sent to the admin login first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import django_otp
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from core.two_factor import (
    authenticator_confirm,
    authenticator_pending,
    authenticator_qr_svg,
    authenticator_secret,
    has_second_factor,
    is_verified,
    recovery_codes_issue,
    recovery_codes_left,
)

TEMPLATE = "admin/two_factor.html"


def _next_url(request: HttpRequest, site: Any) -> str:
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index", current_app=site.name)


def two_factor_setup(request: HttpRequest, *, site: Any) -> HttpResponse:
    user = request.user
    enrolled = has_second_factor(user)
    if enrolled and not is_verified(user):
        query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('admin:login', current_app=site.name)}?{query}")
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Two-factor authentication",
        "next": _next_url(request, site),
        "enrolled": enrolled,
    }
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "confirm":
            result = authenticator_confirm(user=user, code=request.POST.get("code", ""))
            if result is not None:
                device, codes = result
                request.session.cycle_key()  # a more trusted session deserves a new key
                django_otp.login(request, device)
                return render(request, TEMPLATE, {**context, "enrolled": True, "codes": codes})
            context["error"] = (
                "That code is not right. Check that the app shows the account just added, "
                "and type the code it shows now."
            )
        elif action == "recovery_codes" and enrolled:
            return render(request, TEMPLATE, {**context, "codes": recovery_codes_issue(user=user)})
        else:
            return HttpResponseRedirect(request.get_full_path())
    if enrolled and not request.GET.get("replace") and "error" not in context:
        context["codes_left"] = recovery_codes_left(user=user)
        return render(request, TEMPLATE, context)
    device = authenticator_pending(user=user)
    context.update(
        {
            "setup": True,
            "qr_svg": authenticator_qr_svg(device),
            "secret": authenticator_secret(device),
            "otpauth_url": device.config_url,
        }
    )
    return render(request, TEMPLATE, context)
