"""``manage.py rotate_card_keys`` under load: real threads on PostgreSQL keep buying, paying,
getting keys delivered and looking orders up while the pool is re-encrypted.

Old and new ciphertext both decrypt while it runs, nothing is lost or duplicated, no checkout
or delivery fails, and afterwards the old key can be dropped from the settings.
"""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client

from cardpool.crypto import decrypt_secret, fingerprint
from cardpool.models import CardKey
from cardpool.rotation import keys_reencrypt
from cardpool.services import keys_import
from orders.models import Order, OrderStatus
from riskrules.models import RiskRule
from tests.concurrency import run_concurrently
from tests.factories import ProductFactory
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

KEYS = 600
EARLY_ORDERS = 6  # delivered before the rotation: their keys are read back during it
BUYERS = 2
READERS = 2
WAIT = 60  # seconds a thread waits for another's signal before the test fails (never reached)


def _keys_of(setting: str) -> list[str]:
    return [k.strip() for k in setting.split(",") if k.strip()]


@pytest.fixture
def rotation(settings):
    """Step 1 and 2 of README "Key rotation": pin the fingerprint key, prepend a new key."""
    old = _keys_of(settings.CARDKEY_ENCRYPTION_KEY)
    settings.CARDKEY_ENCRYPTION_KEY = ",".join(old)
    settings.CARDKEY_FINGERPRINT_KEY = settings.CARDKEY_FINGERPRINT_KEY or old[-1]
    new = Fernet.generate_key().decode()

    class Keys:
        old_keys = old
        new_key = new

        @staticmethod
        def start() -> None:
            settings.CARDKEY_ENCRYPTION_KEY = ",".join([new, *old])

        @staticmethod
        def drop_old() -> None:
            settings.CARDKEY_ENCRYPTION_KEY = new

    return Keys


def _which_key(secret, keys) -> str:
    """``"new"`` or ``"old"``: the one key (alone) that decrypts ``secret``."""
    token = bytes(secret)
    try:
        Fernet(keys.new_key.encode()).decrypt(token)
        return "new"
    except InvalidToken:
        pass
    for key in keys.old_keys:
        try:
            Fernet(key.encode()).decrypt(token)
            return "old"
        except InvalidToken:
            continue
    raise AssertionError("a key that no configured key decrypts")


def _buy(client: Client, email: str, quantity: int) -> Order:
    response = client.post(
        "/api/v1/orders",
        {"product": "rotating", "quantity": quantity, "email": email},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    order = Order.objects.get(order_no=response.json()["order_no"])
    assert post_event(client, completed_event(order)).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED, order.status
    return order


def _lookup(client: Client, order: Order) -> list[str]:
    response = client.get(f"/api/v1/orders/{order.order_no}", {"email": order.email})
    assert response.status_code == 200, response.content
    return response.json()["keys"]


def test_rotation_under_checkouts_deliveries_and_lookups_loses_nothing(rotation):
    RiskRule.objects.update(enabled=False)  # velocity limits are not what this test is about
    product = ProductFactory(slug="rotating", max_per_order=3)
    plaintexts = [f"ROT-{i:04d}-{uuid.uuid4().hex[:10]}" for i in range(KEYS)]
    keys_import(product=product, text="\n".join(plaintexts))
    early = [
        _buy(Client(REMOTE_ADDR=f"10.9.{i}.1"), f"early{i}@example.com", 2)
        for i in range(EARLY_ORDERS)
    ]
    early_keys = {order.order_no: _lookup(Client(), order) for order in early}
    before = {
        pk: (fp, decrypt_secret(secret))
        for pk, fp, secret in CardKey.objects.values_list("pk", "fingerprint", "secret")
    }
    assert sorted(p for _, p in before.values()) == sorted(plaintexts)

    rotation.start()  # new key first: new rows are encrypted with it, old ones still decrypt
    # Signals that pin the overlap without timing: the rotation starts once every buyer has
    # bought, stops halfway until a reader has seen the mixed pool and a buyer has bought in
    # it, then finishes while they carry on.
    buying = threading.Barrier(BUYERS + 1)
    half, mixed_seen, bought_in_mixed, done = (threading.Event() for _ in range(4))
    outputs: list[str] = []

    def rotate() -> str:
        try:
            buying.wait(WAIT)
            out = io.StringIO()
            call_command("rotate_card_keys", batch_size=25, max_keys=KEYS // 2, stdout=out)
            half.set()
            assert mixed_seen.wait(WAIT), "no reader saw the half-rotated pool"
            assert bought_in_mixed.wait(WAIT), "nobody bought from the half-rotated pool"
            call_command("rotate_card_keys", batch_size=25, stdout=out)
            outputs.append(out.getvalue())
            return "rotated"
        finally:
            done.set()

    def buy(n: int) -> list[Order]:
        client = Client(REMOTE_ADDR=f"10.{n}.0.1")
        orders = [_buy(client, f"buyer{n}-0@example.com", 1)]
        buying.wait(WAIT)
        while not done.is_set():
            mixed = half.is_set()
            i = len(orders)
            orders.append(_buy(client, f"buyer{n}-{i}@example.com", 1 + i % 2))
            if mixed:
                bought_in_mixed.set()
        orders.append(_buy(client, f"buyer{n}-last@example.com", 1))  # after the rotation
        return orders

    def read(n: int) -> dict[str, int]:
        client = Client(REMOTE_ADDR=f"10.8.{n}.1")
        seen = {"old": 0, "new": 0, "rounds": 0}
        while True:
            finished = done.is_set()
            kinds = set()
            for pk, secret in CardKey.objects.filter(pk__in=list(before)).values_list(
                "pk", "secret"
            ):
                assert decrypt_secret(secret) == before[pk][1]
                kind = _which_key(secret, rotation)
                seen[kind] += 1
                kinds.add(kind)
            for order in early:
                assert _lookup(client, order) == early_keys[order.order_no]
            seen["rounds"] += 1
            if kinds == {"old", "new"}:
                mixed_seen.set()
            if finished:
                return seen

    results = run_concurrently(
        1 + BUYERS + READERS,
        lambda i: rotate() if i == 0 else buy(i) if i <= BUYERS else read(i),
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    assert "re-encrypted 300 keys" in outputs[0]

    # Readers saw both ciphertexts, and both decrypted (asserted on every row they read).
    assert any(r["old"] for r in results[1 + BUYERS :])
    assert any(r["new"] for r in results[1 + BUYERS :])

    # Nothing lost or duplicated: the same rows, fingerprints and plaintexts, all under NEW.
    after = {
        pk: (fp, secret)
        for pk, fp, secret in CardKey.objects.values_list("pk", "fingerprint", "secret")
    }
    assert after.keys() == before.keys()
    for pk, (fp, secret) in after.items():
        assert fp == before[pk][0]
        assert _which_key(secret, rotation) == "new"
        assert Fernet(rotation.new_key.encode()).decrypt(bytes(secret)).decode() == before[pk][1]

    # Every checkout during the rotation was delivered, each key sold once.
    bought = [o for r in results[1 : 1 + BUYERS] for o in r] + early
    delivered = Order.objects.filter(pk__in=[o.pk for o in bought], status=OrderStatus.DELIVERED)
    assert delivered.count() == len(bought)
    sold = CardKey.objects.filter(status=CardKey.Status.SOLD)
    assert sold.count() == sum(o.quantity for o in bought)
    assert sold.values("pk").distinct().count() == sold.count()

    # Step 4: the old key is dropped; everything still decrypts and de-duplicates.
    rotation.drop_old()
    assert all(decrypt_secret(s) == before[pk][1] for pk, (_, s) in after.items())
    assert all(fingerprint(before[pk][1]) == fp for pk, (fp, _) in after.items())
    client = Client()
    for order in bought:
        assert len(_lookup(client, order)) == order.quantity
    for order in early:
        assert _lookup(client, order) == early_keys[order.order_no]
    assert keys_import(product=product, text=plaintexts[0]).duplicates == 1

    # Running it again writes nothing: every key is already under the first key.
    out = io.StringIO()
    call_command("rotate_card_keys", stdout=out)
    assert out.getvalue().startswith(f"re-encrypted 0 keys ({KEYS} already current)")


def test_rotation_never_waits_for_a_key_a_delivery_holds_and_finishes_it_next_run(rotation):
    """A row locked by another transaction (a delivery in progress) is skipped, not waited
    for — the rotation cannot be part of a deadlock — and the next run re-encrypts it."""
    product = ProductFactory()
    keys_import(product=product, text="\n".join(f"HELD-{i}" for i in range(10)))
    held_pk = CardKey.objects.order_by("pk").values_list("pk", flat=True)[4]
    rotation.start()
    held, release = threading.Event(), threading.Event()

    def hold(i: int) -> str:
        with transaction.atomic():
            CardKey.objects.select_for_update().get(pk=held_pk)
            held.set()
            assert release.wait(WAIT)
        return "held"

    def rotate_while_held(i: int):
        assert held.wait(WAIT)
        try:
            with connection.cursor() as cursor:  # waiting for the row would fail here, not hang
                cursor.execute("SET lock_timeout = '5s'")
            return keys_reencrypt(batch_size=3, max_passes=1)
        finally:
            release.set()

    results = run_concurrently(2, lambda i: hold(i) if i == 0 else rotate_while_held(i))
    assert results[0] == "held", results
    report = results[1]
    assert not isinstance(report, BaseException), report
    assert (report.reencrypted, report.remaining) == (9, 1)
    assert _which_key(CardKey.objects.get(pk=held_pk).secret, rotation) == "old"

    out = io.StringIO()
    call_command("rotate_card_keys", stdout=out)
    assert out.getvalue().startswith("re-encrypted 1 keys (9 already current)")
    rotation.drop_old()
    assert sorted(decrypt_secret(s) for s in CardKey.objects.values_list("secret", flat=True)) == [
        f"HELD-{i}" for i in range(10)
    ]


def test_rotation_refuses_while_the_fingerprint_key_would_move(settings, rotation):
    keys_import(product=ProductFactory(), text="FP-1")
    rotation.start()
    settings.CARDKEY_FINGERPRINT_KEY = ""
    with pytest.raises(CommandError, match="CARDKEY_FINGERPRINT_KEY"):
        call_command("rotate_card_keys", stdout=io.StringIO())
    assert _which_key(CardKey.objects.get().secret, rotation) == "old"
