"""The admin app, on Kami's admin site (``core.admin_site``): named in ``INSTALLED_APPS``.

Apart from ``core.admin_site`` because this module is imported while apps load, before any
model may be imported.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class KamiAdminConfig(AdminConfig):
    default_site = "core.admin_site.KamiAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from core.auth_admin import register_auth_admins

        register_auth_admins()
