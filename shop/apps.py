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
        from django.conf import settings
        from django.contrib.auth.models import Group, User

        from core.log_redaction import register_settings_secrets
        from shop import checks  # noqa: F401 - registers the system checks
        from shop.audit import audit_track, audit_track_m2m
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
        audit_track(ShopSettings)
        post_migrate.connect(_ensure_roles_after_migrate, sender=self, dispatch_uid="kami-roles")
        register_settings_secrets(settings)
