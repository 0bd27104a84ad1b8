from typing import Any

from django.apps import AppConfig
from django.db import connection
from django.db.models.signals import post_migrate


def _ensure_roles_after_migrate(**kwargs: Any) -> None:
    """The role groups and their permissions after every migrate (``core.role_groups``), once
    the tables they live in exist (a migrate to an older state may have none)."""
    from core.role_groups import roles_ensure
    from shop.models import AuditEntry

    needed = {"auth_group", "auth_permission", AuditEntry._meta.db_table}
    if needed <= set(connection.introspection.table_names()):
        roles_ensure()


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from axes.models import AccessAttempt
        from django.conf import settings
        from django.contrib.auth.models import Group, User
        from django_otp.plugins.otp_static.models import StaticDevice
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from core.log_redaction import register_settings_secrets
        from shop import checks  # noqa: F401 - registers the system checks
        from shop.audit import audit_track, audit_track_m2m, audit_track_removals_by_people
        from shop.models import ShopSettings

        # Staff and roles: accounts, their flags and groups, and what each group may do.
        audit_track(
            User,
            fields=[
                "username",
                "email",
                "first_name",
                "last_name",
                "is_active",
                "is_staff",
                "is_superuser",
                "password",
            ],
            secret=["password"],
        )
        audit_track(Group)
        audit_track_m2m(User, "groups")
        audit_track_m2m(User, "user_permissions", label=("content_type__app_label", "codename"))
        audit_track_m2m(Group, "permissions", label=("content_type__app_label", "codename"))
        audit_track(ShopSettings, secret=["callback_secret"])
        # Second factors and lockouts: who enrolled or reset a device, who unlocked a login.
        audit_track(TOTPDevice, fields=["user", "name", "confirmed"])
        audit_track(StaticDevice, fields=["user", "name", "confirmed"])
        audit_track_removals_by_people(
            AccessAttempt, fields=["username", "ip_address"], note="login unlocked"
        )
        post_migrate.connect(_ensure_roles_after_migrate, sender=self, dispatch_uid="kami-roles")
        register_settings_secrets(settings)
