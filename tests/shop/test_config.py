"""Configuration and operations: start-up checks, demo logins, client IP, seeding, expiry."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.utils import timezone

from cardpool.crypto import decrypt_secret, fingerprint
from cardpool.models import CardKey
from cardpool.rotation import keys_reencrypt
from cardpool.services import keys_import
from commissions.models import Promoter
from core.client_ip import client_ip
from orders.models import OrderStatus
from orders.tasks import expire_unpaid_orders
from orders.transitions import InvalidTransition, order_transition
from shop.models import Product
from tests.factories import OrderFactory, ProductFactory, stock_product

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "CARDKEY_ENCRYPTION_KEY", "DJANGO_SETTINGS_MODULE")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base | {"DATABASE_URL": "sqlite:///:memory:"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CARDKEY_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_secrets(missing):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "CARDKEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    env.pop(missing)
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_production_starts_with_secrets():
    result = run_manage(
        "check",
        DEBUG="0",
        SECRET_KEY="x" * 50,
        CARDKEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
@pytest.mark.postgres
def test_demo_logins_are_refused_when_debug_is_off():
    User.objects.create_user("admin", password="admin")
    with override_settings(DEBUG=False):
        assert authenticate(username="admin", password="admin") is None
    with override_settings(DEBUG=True):
        assert authenticate(username="admin", password="admin") is not None


@pytest.mark.parametrize(
    ("trust", "meta", "expected"),
    [
        (False, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "10.0.0.1"),
        (True, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 1.2.3.4"}, "1.2.3.4"),
        (True, {"REMOTE_ADDR": "10.0.0.1"}, "10.0.0.1"),
        (True, {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "junk"}, None),
    ],
)
def test_client_ip(trust, meta, expected):
    request = RequestFactory().get("/", **meta)
    with override_settings(TRUST_X_FORWARDED_FOR=trust):
        assert client_ip(request) == expected


@pytest.mark.django_db
@pytest.mark.postgres
def test_seed_demo_is_idempotent_and_keeps_settings():
    with override_settings(DEBUG=True):
        call_command("seed_demo", stdout=io.StringIO())
        first = (Product.objects.count(), CardKey.objects.count(), User.objects.count())
        call_command("seed_demo", stdout=io.StringIO())
    assert (Product.objects.count(), CardKey.objects.count(), User.objects.count()) == first
    assert Product.objects.count() >= 3 and all(p.keys.exists() for p in Product.objects.all())
    assert Promoter.objects.get(code="DEMO2").upline.code == "DEMO"
    assert User.objects.get(username="admin").is_superuser


@pytest.mark.django_db
@pytest.mark.postgres
def test_expiry_task_expires_only_lapsed_pending_orders():
    product = stock_product(3)
    lapsed = OrderFactory(product=product, hold_expires_at=timezone.now() - timedelta(seconds=1))
    live = OrderFactory(product=product)
    assert expire_unpaid_orders() == 1
    lapsed.refresh_from_db()
    live.refresh_from_db()
    assert (lapsed.status, live.status) == (OrderStatus.EXPIRED, OrderStatus.PENDING)
    assert lapsed.events.get().to_status == OrderStatus.EXPIRED


@pytest.mark.django_db
@pytest.mark.postgres
def test_transitions_outside_the_table_are_refused():
    order = OrderFactory(product=ProductFactory())
    with pytest.raises(InvalidTransition):
        order_transition(order=order, to_status=OrderStatus.DELIVERED)
    order_transition(order=order, to_status=OrderStatus.EXPIRED)
    stale = type(order).objects.get(pk=order.pk)
    stale.status = OrderStatus.PENDING  # a copy that missed the change
    with pytest.raises(InvalidTransition):
        order_transition(order=stale, to_status=OrderStatus.CANCELLED)


@pytest.mark.django_db
@pytest.mark.postgres
def test_key_rotation_keeps_keys_readable_and_fingerprints_stable(settings):
    product = ProductFactory()
    keys_import(product=product, text="ROTATE-ME")
    old_fp = fingerprint("ROTATE-ME")
    new_key = Fernet.generate_key().decode()
    settings.CARDKEY_ENCRYPTION_KEY = f"{new_key},{settings.CARDKEY_ENCRYPTION_KEY}"
    assert keys_reencrypt().reencrypted == 1
    row = CardKey.objects.get()
    assert Fernet(new_key.encode()).decrypt(bytes(row.secret)) == b"ROTATE-ME"
    assert decrypt_secret(row.secret) == "ROTATE-ME"
    assert fingerprint("ROTATE-ME") == old_fp == row.fingerprint
    assert keys_import(product=product, text="ROTATE-ME").duplicates == 1


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(990, "USD", "9.90"), (500, "JPY", "500"), (1234, "KWD", "1.234"), (5, "EUR", "0.05")],
)
def test_money_decimal_strings_follow_iso_exponents(minor, currency, text):
    from core.money import to_decimal_string

    assert to_decimal_string(minor, currency) == text
