"""The shop's three admin roles (issue #9), named in one place for every app and check.

A role is a Django auth group of that name; a superuser is always the owner. Permissions are
what the admin enforces; the role answers the questions permissions cannot express, such as
"may this person see a buyer's email unmasked" or "must this person use a second factor".

- ``owner``: everything, including key reveals, settings, roles and the audit log.
- ``staff``: orders, tickets and stock counts; buyer emails masked, no key contents; may
  resend an order's keys to its buyer without reading them.
- ``finance``: refunds and withdrawals.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    OWNER = "owner"
    STAFF = "staff"
    FINANCE = "finance"


def roles_of(user: Any) -> frozenset[Role]:
    """The roles ``user`` holds; the owner role for any active superuser."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, "_kami_roles", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True)) if user.pk else set()
    roles = {role for role in Role if role.value in names}
    if user.is_superuser:
        roles.add(Role.OWNER)
    result = frozenset(roles)
    user._kami_roles = result
    return result


def has_role(user: Any, role: Role) -> bool:
    return role in roles_of(user)


def is_owner(user: Any) -> bool:
    return has_role(user, Role.OWNER)
