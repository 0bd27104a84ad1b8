"""The login forms of the owner's admin and the promoter pages, behind the login lockout.

Every password check runs inside ``core.lockout.login_attempt``: a username or address that has
failed too often (django-axes, in the database) is refused before its password is hashed, the
right password included, and concurrent guesses cannot overrun the limit. A refusal marks the
request so that ``AxesMiddleware`` answers with the lockout page (``429``, ``Retry-After``).

The admin form also asks for the second factor of a staff user who has one (``core.two_factor``):
a wrong code counts as a failed login, exactly like a wrong password.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed

from core.lockout import LOCKED_MESSAGE, LoginLocked, login_attempt, mark_locked_out
from core.two_factor import has_second_factor, second_factor_verify


class LockoutMixin:
    """For ``AuthenticationForm`` subclasses: the credentials are checked inside the gate."""

    request: Any
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password") or self.request is None:
            return super().clean()  # type: ignore[misc]
        try:
            with login_attempt(self.request, username):
                cleaned = super().clean()  # type: ignore[misc]
                self.verify_second_factor(self.get_user())  # type: ignore[attr-defined]
        except LoginLocked:
            mark_locked_out(self.request, username)
            raise forms.ValidationError(LOCKED_MESSAGE, code="throttled") from None
        return cleaned

    def verify_second_factor(self, user: Any) -> None:
        """After the right password: raise ``ValidationError`` unless the login may proceed."""


class ThrottledAuthenticationForm(LockoutMixin, AuthenticationForm):
    """The promoter login (``/promoter/login``)."""


class AdminLoginForm(LockoutMixin, AdminAuthenticationForm):
    """``/admin/login/``: staff only; a code as well for anyone with a second factor."""

    otp_token = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=32,
        strip=True,
        help_text="The 6 digits from your authenticator app, or a recovery code. "
        "Leave empty if you have not set up two-factor authentication.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": "This account uses two-factor authentication: enter the code from "
        "your authenticator app, or one of your recovery codes.",
        "otp_invalid": "That two-factor code is wrong or already used.",
    }

    def verify_second_factor(self, user: Any) -> None:
        if user is None or not has_second_factor(user):
            return
        code = self.cleaned_data.get("otp_token") or ""
        if not code:
            raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
        device = second_factor_verify(user=user, code=code)
        if device is None:
            user_login_failed.send(
                sender=__name__,
                credentials={"username": self.cleaned_data["username"]},
                request=self.request,
            )
            raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
        user.otp_device = device  # django_otp's user_logged_in hook keeps it in the session
