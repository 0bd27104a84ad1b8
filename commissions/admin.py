"""The owner's side of the promoter programme: settings, rules, promoters, the ledger (read
and adjust only) and withdrawals (approve, reject, mark paid — one by one or in bulk — and a
payout CSV). Every write goes through ``commissions.services``. Each action that changes money
or a promoter's standing needs the change permission: a view-only login (e.g. a promoter's
support) may look and export, never decide.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from commissions.models import (
    ApiToken,
    Attribution,
    CommissionRule,
    CommissionSettings,
    LedgerEntry,
    Promoter,
    PromoterTier,
    ReferralClick,
    Withdrawal,
)
from commissions.selectors import duplicate_account_keys
from commissions.services import (
    ledger_adjust,
    promoters_approve,
    withdrawals_approve,
    withdrawals_mark_paid,
    withdrawals_reject,
)
from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.errors import KamiError
from core.money import to_decimal_string


@admin.register(CommissionSettings)
class CommissionSettingsAdmin(SingletonAdmin):
    list_display = ["__str__", "level1_percent", "level2_percent", "hold_days", "min_withdrawal"]


@admin.register(PromoterTier)
class PromoterTierAdmin(admin.ModelAdmin):
    list_display = ["name"]


@admin.register(CommissionRule)
class CommissionRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "level", "promoter", "product", "tier", "percent", "fixed_per_unit"]
    list_filter = ["level"]
    raw_id_fields = ["promoter", "product"]


@admin.register(Promoter)
class PromoterAdmin(admin.ModelAdmin):
    list_display = ["code", "user", "upline", "tier", "status", "created_at"]
    list_filter = ["status", "tier"]
    search_fields = ["code", "user__username", "user__email"]
    raw_id_fields = ["user", "upline"]
    actions = ["approve"]

    @admin.action(description="Approve selected promoters", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = promoters_approve(promoter_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} promoter(s) approved.")


@admin.register(ReferralClick)
class ReferralClickAdmin(ReadOnlyAdmin):
    list_display = ["promoter", "created_at", "landing_path", "referrer"]
    list_filter = ["created_at"]
    search_fields = ["promoter__code"]


@admin.register(Attribution)
class AttributionAdmin(ReadOnlyAdmin):
    list_display = ["order", "ref_code", "status", "promoter", "upline", "refusal", "posted_at"]
    list_filter = ["status", "refusal"]
    search_fields = ["order__order_no", "ref_code"]


class AdjustmentForm(forms.ModelForm):
    class Meta:
        model = LedgerEntry
        fields = ["promoter", "amount", "reason"]
        help_texts = {"amount": "Minor units, signed: 500 credits 5.00, -500 debits it."}


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only history; "add" posts a manual adjustment (a correction is a new entry)."""

    list_display = ["created_at", "promoter", "kind", "money", "order", "level", "available_at"]
    list_filter = ["kind", "level"]
    search_fields = ["promoter__code", "order__order_no", "reason"]
    raw_id_fields = ["promoter"]
    form = AdjustmentForm

    @admin.display(description="amount")
    def money(self, obj: LedgerEntry) -> str:
        return f"{to_decimal_string(obj.amount, obj.currency)} {obj.currency}"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: LedgerEntry, form, change: bool) -> None:
        entry = ledger_adjust(
            promoter=form.cleaned_data["promoter"],
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
        obj.pk = entry.pk
        obj._state.adding = False


class DuplicateAccountFilter(admin.SimpleListFilter):
    title = "payout account"
    parameter_name = "duplicate"

    def lookups(self, request, model_admin):
        return [("yes", "Used by several promoters")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(account_key__in=duplicate_account_keys())
        return queryset


class ReasonForm(forms.Form):
    text = forms.CharField(max_length=300)


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "created_at",
        "promoter",
        "money",
        "method",
        "account",
        "duplicate_account",
        "status",
        "reference",
    ]
    list_filter = ["status", "method", DuplicateAccountFilter]
    search_fields = ["promoter__code", "account", "reference"]
    actions = ["approve", "reject", "mark_paid", "export_csv"]
    readonly_fields = [f.name for f in Withdrawal._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # promoters request withdrawals; the owner decides

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        self._duplicates = duplicate_account_keys()
        return super().get_queryset(request).select_related("promoter")

    @admin.display(description="amount")
    def money(self, obj: Withdrawal) -> str:
        return f"{to_decimal_string(obj.amount, obj.currency)} {obj.currency}"

    @admin.display(description="duplicate?", boolean=True)
    def duplicate_account(self, obj: Withdrawal) -> bool:
        return obj.account_key in getattr(self, "_duplicates", set())

    def _ids(self, queryset: QuerySet) -> list[int]:
        return list(queryset.values_list("pk", flat=True))

    @admin.action(description="Approve selected withdrawals", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = withdrawals_approve(withdrawal_ids=self._ids(queryset), actor=request.user)
        self.message_user(request, f"{count} withdrawal(s) approved.")

    def _with_text(self, request, queryset, *, action, title, label, apply):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                count = apply(form.cleaned_data["text"])
            except KamiError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"{count} withdrawal(s) updated.")
            return None
        return TemplateResponse(
            request,
            "commissions/admin/withdrawal_action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "label": label,
                "action": action,
                "queryset": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(
        description="Reject selected withdrawals (money returns)…", permissions=["change"]
    )
    def reject(self, request: HttpRequest, queryset: QuerySet):
        return self._with_text(
            request,
            queryset,
            action="reject",
            title="Reject withdrawals",
            label="Reason (the promoter sees it)",
            apply=lambda text: withdrawals_reject(
                withdrawal_ids=self._ids(queryset), reason=text, actor=request.user
            ),
        )

    @admin.action(description="Mark selected withdrawals paid…", permissions=["change"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet):
        return self._with_text(
            request,
            queryset,
            action="mark_paid",
            title="Mark withdrawals paid",
            label="Payout reference",
            apply=lambda text: withdrawals_mark_paid(
                withdrawal_ids=self._ids(queryset), reference=text, actor=request.user
            ),
        )

    @admin.action(description="Export payout CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="payouts.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "id",
                "promoter",
                "email",
                "amount",
                "currency",
                "method",
                "account",
                "status",
                "duplicate_account",
                "requested_at",
            ]
        )
        duplicates = duplicate_account_keys()
        for w in queryset.select_related("promoter__user").order_by("pk"):
            writer.writerow(
                [
                    w.pk,
                    w.promoter.code,
                    w.promoter.user.email,
                    to_decimal_string(w.amount, w.currency),
                    w.currency,
                    w.method,
                    _csv_safe(w.account),
                    w.status,
                    "yes" if w.account_key in duplicates else "",
                    w.created_at.isoformat(),
                ]
            )
        return response


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: neutralise them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be revoked (deleted) here; they are never shown again."""

    list_display = ["prefix", "user", "created_at", "last_used_at"]
    readonly_fields = ["user", "prefix", "key_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
