"""The login form of the owner's admin and the promoter pages, with a brake on guessing.

Each attempt takes a slot of two failure budgets before the password is hashed — per client IP
and per username (``core.ratelimit``: counted atomically; a success gives its slots back) — so a
script can neither try 40 passwords and then the right one, nor spread guesses at one account
over many addresses faster than the per-username budget. Once a budget is spent even the right
password is refused, with a message that says so, until the window passes. (API token logins
have their own per-IP budget in ``commissions.api``.)
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from core.client_ip import client_ip
from core.ratelimit import RateLimit

LOGIN_FAILURES_PER_IP = RateLimit("login-failures-ip", limit=20, window_seconds=900)
LOGIN_FAILURES_PER_USER = RateLimit("login-failures-user", limit=10, window_seconds=900)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed logins: wait a few minutes and try again.",
    }

    def clean(self):
        username = str(self.cleaned_data.get("username") or "").strip().lower()[:150]
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        ip = (client_ip(self.request) if self.request else None) or "unknown"
        attempts = [LOGIN_FAILURES_PER_IP.hit(ip), LOGIN_FAILURES_PER_USER.hit(username)]
        if not all(attempt.allowed for attempt in attempts):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        cleaned = super().clean()  # raises on a wrong password: the slots stay taken
        LOGIN_FAILURES_PER_IP.refund(attempts[0])
        LOGIN_FAILURES_PER_USER.refund(attempts[1])
        return cleaned
