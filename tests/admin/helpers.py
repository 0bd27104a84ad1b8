"""Admin test helpers: users of each role, a real login through the admin's form, and a
crawler that collects every admin page a user can reach by following links."""

from __future__ import annotations

import re
from collections import deque
from html import unescape
from urllib.parse import urlsplit

from django.contrib.auth.models import Group, Permission, User
from django.test import Client

PASSWORD = "role-pass-Long-42"
_HREF = re.compile(r'href="((?:/admin/|\?)[^"#]*)"')
# Leaving, or pages that only restate the login: nothing about an order there.
_SKIP = ("/admin/logout/", "/admin/jsi18n/", "/admin/password_change/")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def role_user(role: str, username: str | None = None) -> User:
    """An active admin user holding ``role``: "owner" is a superuser; "staff", "finance" and
    "owner-group" (an owner who is not a superuser) are members of the group of that name,
    which ``roles_ensure`` created after migrate."""
    username = username or f"{role}-user"
    if role == "owner":
        return User.objects.create_superuser(username, f"{username}@shop.test", PASSWORD)
    user = User.objects.create_user(username, f"{username}@shop.test", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role.removesuffix("-group")))
    return user


def perms_user(*perms: str, username: str = "support") -> User:
    """A staff login (no role) holding exactly ``perms`` ("app_label.codename")."""
    user = User.objects.create_user(username, f"{username}@shop.test", PASSWORD, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def admin_login(user: User) -> Client:
    """Log in the way a person does: the admin's login form, password and all."""
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return client


def crawl(client: Client, *start: str, limit: int = 400) -> dict[str, str]:
    """Every admin page reachable from ``start`` by links, as {url: html}: what this login can
    read. Only GETs (the admin changes nothing on a GET); refused pages are left out."""
    queue = deque(start or ("/admin/",))
    seen: set[str] = set(queue)
    pages: dict[str, str] = {}
    while queue and len(pages) < limit:
        url = queue.popleft()
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        pages[url] = html
        for href in _HREF.findall(html):
            link = unescape(href)
            if link.startswith("?"):
                # A list's filters and pages: each one once, from the bare list (combinations
                # would be thousands of pages of the same rows). Sorting and facet counts
                # show the same rows again.
                if urlsplit(url).query or link.startswith(("?o=", "?_facets")):
                    continue
                link = urlsplit(url).path + link
            elif urlsplit(link).query and urlsplit(url).query:
                continue
            if link.startswith(_SKIP) or urlsplit(link).path.endswith("/delete/"):
                continue
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return pages


def emails_in(text: str) -> set[str]:
    return set(_EMAIL.findall(unescape(text)))
