"""Every page the shop serves carries the security headers and a strict Content-Security-Policy,
and none carries inline code the policy would refuse (issue "Owner security and hardening").

The pages: storefront, product, the order page waiting and delivered, lookup, sandbox pay,
the promoter pages, the API docs, and every admin changelist, add and change page of every
registered model (so a model added later is audited too).
"""

from __future__ import annotations

import contextlib

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse

from commissions.models import Withdrawal
from orders.models import Order, OrderStatus
from tests.commissions.factories import PromoterFactory
from tests.factories import stock_product
from tests.html_audit import csp_directives, inline_code

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
}
OTHER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def assert_secure_page(response, path: str) -> None:
    assert response.status_code == 200, (path, response.status_code)
    assert "Content-Security-Policy" in response.headers, f"{path}: no CSP"
    policy = csp_directives(response.headers["Content-Security-Policy"])
    assert policy == EXPECTED_CSP, (path, policy)
    for name, value in OTHER_HEADERS.items():
        assert response.headers.get(name) == value, (path, name, response.headers.get(name))
    permissions = response.headers.get("Permissions-Policy", "")
    assert "camera=()" in permissions and "geolocation=()" in permissions, (path, permissions)
    if response["Content-Type"].startswith("text/html"):
        found = inline_code(response.content.decode())
        assert not found, f"{path}: {found}"


@pytest.fixture
def buyer_pages(django_capture_on_commit_callbacks):
    """The buyer's pages in order: each path with the client (browser) that may see it."""
    product = stock_product(3, slug="game", name="Great Game")
    buyer = Client()
    pages = [(buyer, "/"), (buyer, f"/p/{product.slug}"), (buyer, "/lookup")]
    response = buyer.post(f"/p/{product.slug}", {"email": "me@example.com", "quantity": "1"})
    assert response.status_code == 302
    order = Order.objects.get()
    pages += [(buyer, f"/pay/sandbox/{order.order_no}"), (buyer, f"/o/{order.order_no}")]
    return buyer, order, pages


def test_buyer_pages_waiting_and_delivered(buyer_pages, django_capture_on_commit_callbacks):
    buyer, order, pages = buyer_pages
    for client, path in pages:
        assert_secure_page(client.get(path), path)
    with django_capture_on_commit_callbacks(execute=True):
        buyer.post(f"/pay/sandbox/{order.order_no}")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    for path in (f"/o/{order.order_no}", f"/o/{order.order_no}/panel"):
        response = buyer.get(path)
        assert_secure_page(response, path)
    assert "data-copy=" in buyer.get(f"/o/{order.order_no}").content.decode()  # keys shown


def test_lookup_error_page_and_api_responses(client):
    stock_product(1, slug="game")
    response = client.post("/lookup", {"order_no": "KNOPE", "email_or_password": "x@example.com"})
    assert response.status_code in (200, 404, 422)
    assert "Content-Security-Policy" in response.headers
    assert not inline_code(response.content.decode())
    api = client.get("/api/v1/products")
    assert api.status_code == 200
    assert csp_directives(api.headers["Content-Security-Policy"]) == EXPECTED_CSP
    assert api.headers["X-Content-Type-Options"] == "nosniff"


def test_promoter_pages(client):
    for path in ("/promoter/login", "/promoter/join"):
        assert_secure_page(client.get(path), path)
    promoter = PromoterFactory(code="ALICE")
    withdrawal = Withdrawal.objects.create(
        promoter=promoter,
        amount=1000,
        currency="USD",
        method=Withdrawal.Method.PAYPAL,
        account="alice@example.com",
        account_key="paypal:alice@example.com",
    )
    client.force_login(promoter.user)
    for path in ("/promoter/", f"/promoter/withdrawals/{withdrawal.pk}"):
        assert_secure_page(client.get(path), path)
    assert "data-select-on-focus" in client.get("/promoter/").content.decode()


def test_api_docs_page(client):
    assert_secure_page(client.get("/api/v1/docs"), "/api/v1/docs")


def _admin_paths() -> list[str]:
    paths = [reverse("admin:index"), reverse("admin:password_change")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        paths.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(_SuperuserRequest()):
            paths.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            with contextlib.suppress(NoReverseMatch):
                paths.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return paths


class _SuperuserRequest:
    """Enough of a request for ``has_add_permission`` (singletons refuse a second row)."""

    class user:  # noqa: N801 - stands in for request.user
        is_active = is_staff = is_superuser = True

        @staticmethod
        def has_perm(perm: str, obj=None) -> bool:
            return True


def test_every_admin_page(admin_client, buyer_pages, django_capture_on_commit_callbacks):
    buyer, order, _ = buyer_pages
    with django_capture_on_commit_callbacks(execute=True):
        buyer.post(f"/pay/sandbox/{order.order_no}")  # a delivered order, its keys and events
    PromoterFactory(code="BOB")
    paths = _admin_paths()
    paths.append(reverse("admin:shop_product_import_keys", args=[order.product_id]))
    assert len(paths) > 40
    for path in paths:
        response = admin_client.get(path, follow=True)
        assert_secure_page(response, path)


def test_admin_login_page():
    client = Client()
    assert_secure_page(client.get(reverse("admin:login")), "/admin/login/")
    assert User.objects.count() == 0


def test_the_audit_finds_what_the_policy_would_refuse():
    html = (
        '<p style="x">a</p><style>p{}</style><input onfocus="this.select()">'
        '<a href=" JavaScript:alert(1)">x</a><script>alert(1)</script>'
        '<script src="/static/kami.js"></script><script type="application/json">{"a": 1}</script>'
    )
    found = inline_code(html)
    assert len(found) == 5, found
    clean = '<script src="/s.js"></script><script type="application/json">1</script>'
    assert not inline_code(clean)
