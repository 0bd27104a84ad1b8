"""The permissions of each role's group, and ``roles_ensure``, which makes the groups say so.

A role is a Django group (``core.roles``); what its members may do in the admin is the group's
permissions, listed here as code so they are reviewed like code. ``roles_ensure`` creates the
three groups and sets each one's permissions to exactly this list, so running it again changes
nothing and a permission removed here is removed from the group too. One person who needs more
than their role gets a permission on their own account, not a different group.

It runs after every ``migrate`` (a ``post_migrate`` receiver, ``shop.apps``) and by hand as
``manage.py ensure_roles``. Not a data migration: permissions are themselves created by
``post_migrate``, so on a fresh database a migration would find none to grant, and the test
suite's flushes would wipe rows a migration wrote once but re-run ``post_migrate`` every time.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from core.roles import Role

# Stock counts are the product list's columns (available, claimed, stock, sold) and the import
# batches: counts, never key contents. Tickets: staff read, reply and replace keys.
STAFF_PERMISSIONS = (
    "orders.view_order",
    "orders.resend_order_keys",
    "orders.view_ticket",
    "orders.reply_ticket",
    "shop.view_product",
    "shop.view_category",
    "cardpool.view_importbatch",
)
# Refunds are the review queue's reject-and-refund (``orders.review``); withdrawals are decided
# in the commissions admin, with the promoters and ledger they belong to in view.
FINANCE_PERMISSIONS = (
    "orders.view_order",
    "orders.view_ticket",
    "riskrules.view_revieworder",
    "riskrules.review_order",
    "commissions.view_withdrawal",
    "commissions.change_withdrawal",
    "commissions.view_promoter",
    "commissions.view_ledgerentry",
)
# The owner's group holds every permission there is (a superuser has them anyway).
ROLE_PERMISSIONS: dict[Role, tuple[str, ...] | None] = {
    Role.OWNER: None,
    Role.STAFF: STAFF_PERMISSIONS,
    Role.FINANCE: FINANCE_PERMISSIONS,
}


@dataclass(frozen=True)
class RolesReport:
    created: tuple[str, ...]
    changed: tuple[str, ...]
    missing: tuple[str, ...]  # named above but unknown to the database: a typo or an old app


def _permissions(labels: tuple[str, ...]) -> tuple[list[Permission], list[str]]:
    wanted = {tuple(label.split(".", 1)) for label in labels}
    found = [
        p
        for p in Permission.objects.select_related("content_type")
        if (p.content_type.app_label, p.codename) in wanted
    ]
    known = {f"{p.content_type.app_label}.{p.codename}" for p in found}
    return found, sorted(set(labels) - known)


def roles_ensure() -> RolesReport:
    """Create the role groups and set their permissions to ``ROLE_PERMISSIONS``. Idempotent."""
    for app_config in apps.get_app_configs():
        # Every app's permissions first: post_migrate reaches the apps one at a time.
        create_permissions(app_config, verbosity=0)
    created: list[str] = []
    changed: list[str] = []
    missing: list[str] = []
    with transaction.atomic():
        for role, labels in ROLE_PERMISSIONS.items():
            group, was_created = Group.objects.get_or_create(name=role.value)
            if labels is None:
                permissions = list(Permission.objects.all())
            else:
                permissions, unknown = _permissions(labels)
                missing.extend(unknown)
            before = set(group.permissions.values_list("pk", flat=True))
            if before != {p.pk for p in permissions}:
                group.permissions.set(permissions)
                if not was_created:
                    changed.append(role.value)
            if was_created:
                created.append(role.value)
    return RolesReport(tuple(created), tuple(changed), tuple(missing))
