"""``manage.py ensure_roles``: create the owner, staff and finance groups with exactly the
permissions ``core.role_groups`` lists. ``migrate`` does the same after every run; this is for
checking by hand, or after permissions were edited in the admin."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.role_groups import roles_ensure


class Command(BaseCommand):
    help = "Create the owner/staff/finance groups and set their permissions (idempotent)."

    def handle(self, *args, **options) -> None:
        report = roles_ensure()
        if report.missing:
            raise CommandError(
                "Permissions named in core.role_groups but unknown: " + ", ".join(report.missing)
            )
        created = ", ".join(report.created) or "none"
        changed = ", ".join(report.changed) or "none"
        self.stdout.write(f"Roles ensured. Created: {created}. Permissions reset: {changed}.")
