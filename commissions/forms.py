"""Forms for the promoter pages: they only parse input; services decide."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext_lazy as _

from commissions.models import Withdrawal
from core.money import exponent


class JoinForm(forms.Form):
    username = forms.CharField(max_length=150, label=_("Username"))
    email = forms.EmailField(label=_("Email"))
    password = forms.CharField(widget=forms.PasswordInput, max_length=128, label=_("Password"))
    upline = forms.CharField(max_length=32, required=False, label=_("Invited by (code, optional)"))


class WithdrawalForm(forms.Form):
    amount = forms.CharField(max_length=20)
    method = forms.ChoiceField(choices=Withdrawal.Method.choices)
    account = forms.CharField(max_length=200)

    def __init__(self, *args, methods: list[str], currency: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(Withdrawal.Method.choices)
        self.fields["method"].choices = [(m, labels[m]) for m in methods]
        self.currency = currency

    def clean_amount(self) -> int:
        """``"12.50"`` → ``1250`` minor units; more decimals than the currency has is an error."""
        raw = self.cleaned_data["amount"].strip().replace(",", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise forms.ValidationError(_("Enter an amount such as 12.50.")) from None
        places = exponent(self.currency)
        minor = value.scaleb(places)
        if not value.is_finite() or minor != minor.to_integral_value() or value <= 0:
            raise forms.ValidationError(
                _("Enter a positive amount with at most %(places)d decimals.") % {"places": places}
            )
        return int(minor)
