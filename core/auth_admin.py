"""The owner's admin for logins: lockouts with an unlock, the login log, staff second factors.

All of it is for the owner only (``core.roles.is_owner``), whatever model permissions a staff
account holds: who is locked out and from where, and who has which second factor, is the
owner's business. django-axes' and django-otp's own admins are replaced (registered after
autodiscovery, by ``core.admin_apps``): axes' would show the stock "delete" as the way to
unlock, and django-otp's would let any holder of its permissions add a device to an account.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.roles import is_owner


class OwnerOnlyAdmin(admin.ModelAdmin):
    """Viewable and deletable by the owner; added and edited by nobody here."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_owner(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_owner(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_owner(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _failures_by(field: str, since: Any) -> Subquery:
    """Failures within the cool-off of every attempt sharing this row's ``field``."""
    rows = (
        AccessAttempt.objects.filter(**{field: OuterRef(field), "attempt_time__gte": since})
        .order_by()
        .values(field)
        .annotate(total=Sum("failures_since_start"))
        .values("total")
    )
    return Subquery(rows, output_field=IntegerField())


class AccessAttemptAdmin(OwnerOnlyAdmin):
    """Failed logins still counted, one row per username, address and browser. A username is
    locked when its rows add up to the limit, and so is an address; "Unlock" removes every
    row of the selected usernames (or addresses), which is what lifts the lock."""

    list_display = [
        "username",
        "ip_address",
        "failures_since_start",
        "username_status",
        "address_status",
        "attempt_time",
        "path_info",
    ]
    list_filter = ["path_info"]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    readonly_fields = ("username", "ip_address", "user_agent", "path_info", "failures_since_start")
    fields = readonly_fields
    actions = ["unlock_usernames", "unlock_addresses"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessAttempt]:
        cool_off: timedelta = get_cool_off(request) or timedelta(days=36500)
        since = timezone.now() - cool_off
        return (
            super()
            .get_queryset(request)
            .annotate(
                username_failures=Coalesce(_failures_by("username", since), 0),
                address_failures=Coalesce(_failures_by("ip_address", since), 0),
            )
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "Unlock" says what deleting these rows does
        return actions

    @staticmethod
    def _status(failures: int) -> str:
        limit: int = get_failure_limit(None, None)
        return "locked" if failures >= limit else f"{limit - failures} left"

    @admin.display(description="username")
    def username_status(self, obj: Any) -> str:
        return self._status(obj.username_failures)

    @admin.display(description="address")
    def address_status(self, obj: Any) -> str:
        return self._status(obj.address_failures)

    @admin.action(description="Unlock the selected usernames", permissions=["delete"])
    def unlock_usernames(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        names = set(queryset.values_list("username", flat=True))
        deleted, _ = AccessAttempt.objects.filter(username__in=names - {None}).delete()
        if None in names:
            deleted += AccessAttempt.objects.filter(username__isnull=True).delete()[0]
        shown = ", ".join(sorted(n for n in names if n)) or "(no username)"
        self.message_user(
            request, f"Unlocked {shown}: {deleted} attempt rows removed.", messages.SUCCESS
        )

    @admin.action(description="Unlock the selected addresses", permissions=["delete"])
    def unlock_addresses(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        addresses = set(queryset.values_list("ip_address", flat=True))
        deleted, _ = AccessAttempt.objects.filter(ip_address__in=addresses - {None}).delete()
        if None in addresses:
            deleted += AccessAttempt.objects.filter(ip_address__isnull=True).delete()[0]
        shown = ", ".join(sorted(a for a in addresses if a)) or "(unknown address)"
        self.message_user(
            request, f"Unlocked {shown}: {deleted} attempt rows removed.", messages.SUCCESS
        )


class AccessLogAdmin(OwnerOnlyAdmin):
    list_display = ["username", "ip_address", "attempt_time", "logout_time", "path_info"]
    list_filter = ["path_info"]
    search_fields = ["username", "ip_address"]
    readonly_fields = (
        "username",
        "ip_address",
        "user_agent",
        "path_info",
        "attempt_time",
        "logout_time",
    )
    fields = readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeviceAdmin(OwnerOnlyAdmin):
    """A staff member's second factor: deleting it is how the owner resets a lost phone (the
    member then enrols again at their next login). No secrets or codes are shown."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__username", "user__email"]
    readonly_fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    fields = readonly_fields


def register_auth_admins(site: admin.AdminSite | None = None) -> None:
    site = site or admin.site
    for model, model_admin in (
        (AccessAttempt, AccessAttemptAdmin),
        (AccessLog, AccessLogAdmin),
        (TOTPDevice, DeviceAdmin),
        (StaticDevice, DeviceAdmin),
    ):
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
    if site.is_registered(AccessFailureLog):  # not kept (AXES_ENABLE_ACCESS_FAILURE_LOG)
        site.unregister(AccessFailureLog)
