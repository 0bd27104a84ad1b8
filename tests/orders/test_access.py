"""Order lookups: keyed-HMAC query passwords, legacy PBKDF2 upgrade, and equal timing."""

from __future__ import annotations

import gc
import hashlib
import random
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from django.contrib.auth import hashers
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.db import connection
from django.test import override_settings

from core.errors import RateLimited
from orders import access
from orders.access import credentials_match, order_lookup
from orders.models import Order
from orders.query_passwords import (
    PREFIX,
    is_legacy,
    query_password_hash,
    query_password_matches,
)
from tests.factories import OrderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# The suite's fast MD5 hasher first (what make_password uses in tests), then PBKDF2, so a
# real pbkdf2_sha256 hash from before the switch is recognised.
LEGACY_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


def get(client, order_no, **params):
    return client.get(f"/api/v1/orders/{order_no}", params)


def stored_hash(order: Order) -> str:
    return Order.objects.values_list("query_password_hash", flat=True).get(pk=order.pk)


# --- the hash itself ---------------------------------------------------------------------


def test_hash_round_trip_and_wrong_password():
    stored = query_password_hash("hunter2!")
    assert stored.startswith(PREFIX) and len(stored) == len(PREFIX) + 64
    assert len(stored) <= Order._meta.get_field("query_password_hash").max_length
    assert query_password_matches("hunter2!", stored)
    assert not query_password_matches("hunter2", stored)
    assert not query_password_matches("", stored)
    assert not query_password_matches("hunter2!", "")
    assert not is_legacy(stored) and not is_legacy("")
    assert is_legacy(make_password("x")) and is_legacy("pbkdf2_sha256$1000000$salt$hash")


def test_hash_is_not_the_password_and_depends_on_secret_key():
    stored = query_password_hash("hunter2!")
    assert "hunter2!" not in stored
    assert stored != PREFIX + hashlib.sha256(b"hunter2!").hexdigest()  # keyed, not plain
    assert query_password_hash("hunter2!") == stored  # deterministic under one key
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        other = query_password_hash("hunter2!")
        assert other != stored
        assert not query_password_matches("hunter2!", stored)


def test_hash_from_a_rotated_out_key_still_matches_via_fallbacks():
    with override_settings(SECRET_KEY="old-secret-key-" + "x" * 40):
        old = query_password_hash("hunter2!")
    with override_settings(SECRET_KEY_FALLBACKS=["old-secret-key-" + "x" * 40]):
        assert query_password_matches("hunter2!", old)
        assert not query_password_matches("wrong", old)


# --- legacy (pre-HMAC) hashes ------------------------------------------------------------


def _pbkdf2(password: str) -> str:
    # A real pbkdf2_sha256 hash, with few rounds so the test is quick.
    return PBKDF2PasswordHasher().encode(password, "legacysalt", iterations=1000)


@pytest.mark.parametrize("make_legacy", [make_password, _pbkdf2], ids=["make_password", "pbkdf2"])
@override_settings(PASSWORD_HASHERS=LEGACY_HASHERS)
def test_legacy_hash_matches_through_lookup_and_is_upgraded(client, make_legacy):
    order = OrderFactory(query_password_hash=make_legacy("old-secret"))
    legacy = stored_hash(order)
    assert is_legacy(legacy)

    assert get(client, order.order_no, query_password="wrong-secret").status_code == 404
    assert stored_hash(order) == legacy  # a wrong password upgrades nothing

    assert get(client, order.order_no, query_password="old-secret").status_code == 200
    upgraded = stored_hash(order)
    assert upgraded.startswith(PREFIX) and upgraded == query_password_hash("old-secret")

    # The upgraded hash keeps working, and still refuses a wrong password.
    assert get(client, order.order_no, query_password="old-secret").status_code == 200
    assert get(client, order.order_no, query_password="wrong-secret").status_code == 404
    assert stored_hash(order) == upgraded


def test_successful_lookup_rehashes_a_rotated_out_key():
    with override_settings(SECRET_KEY="old-secret-key-" + "x" * 40):
        old = query_password_hash("pw")
    order = OrderFactory(query_password_hash=old)
    with override_settings(SECRET_KEY_FALLBACKS=["old-secret-key-" + "x" * 40]):
        assert order_lookup(order_no=order.order_no, query_password="pw", ip="198.51.100.1")
    assert stored_hash(order) == query_password_hash("pw")


def test_upgrade_does_not_overwrite_a_hash_changed_meanwhile():
    order = OrderFactory(query_password_hash=make_password("pw"))
    Order.objects.filter(pk=order.pk).update(query_password_hash=query_password_hash("newer"))
    assert credentials_match(order, query_password="pw")  # the stale in-memory legacy hash
    assert stored_hash(order) == query_password_hash("newer")


# --- lookups through the API -------------------------------------------------------------


def test_lookup_by_email_and_by_password(client):
    order = OrderFactory(
        email="buyer@example.com",
        query_password_hash=query_password_hash("hunter2!"),
    )
    no = order.order_no
    assert get(client, no, email="Buyer@Example.com ").status_code == 200
    assert get(client, no, query_password="hunter2!").status_code == 200
    assert get(client, no, email="other@example.com").status_code == 404
    assert get(client, no, query_password="hunter2").status_code == 404
    assert get(client, no).status_code == 404
    assert get(client, "K000000NOPE", email="buyer@example.com").status_code == 404
    assert get(client, "K000000NOPE", query_password="hunter2!").status_code == 404
    # Non-ASCII input is a plain miss, not a 500 (compare_digest refuses non-ASCII str).
    assert get(client, no, email="büyer@exämple.com").status_code == 404
    assert get(client, no, query_password="hünter2!").status_code == 404


# --- the failed-lookup limit (contract §4: 30 in 10 minutes per IP) ---------------------------


def test_right_lookups_under_the_limit_cost_nothing(client):
    order = OrderFactory(email="buyer@example.com")
    no = order.order_no
    assert [get(client, no, email="x@example.com").status_code for _ in range(29)] == [404] * 29
    assert [get(client, no, email="buyer@example.com").status_code for _ in range(5)] == [200] * 5
    assert get(client, no, email="x@example.com").status_code == 404  # the 30th failure
    limited = get(client, no, email="buyer@example.com")
    assert limited.status_code == 429 and 0 < int(limited["Retry-After"]) <= 600


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_lookups_evaluate_exactly_the_limit(monkeypatch):
    """The slot is taken before the credentials are checked: 100 wrong lookups from one IP on
    10 threads at once, with a slow check, evaluate exactly 30 and refuse the other 70 (the
    check-then-count guard this replaced evaluated 69 of 100)."""
    order = OrderFactory(email="buyer@example.com")
    checked: list[int] = []
    lock = threading.Lock()
    real_match = access.credentials_match

    def slow_match(*args, **kwargs):
        time.sleep(0.01)  # widen the window a check-then-count race would need
        with lock:
            checked.append(1)
        return real_match(*args, **kwargs)

    monkeypatch.setattr(access, "credentials_match", slow_match)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def guesser() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                try:
                    found = order_lookup(
                        order_no=order.order_no, email="wrong@example.com", ip="198.51.100.50"
                    )
                    outcome = "found" if found else "miss"
                except RateLimited:
                    outcome = "limited"
                with lock:
                    outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=guesser) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(checked) == 30
    assert sorted(outcomes) == ["limited"] * 70 + ["miss"] * 30


def test_order_without_query_password_never_matches_a_password(client):
    order = OrderFactory(query_password_hash="")
    assert get(client, order.order_no, query_password="").status_code == 404
    assert get(client, order.order_no, query_password="anything").status_code == 404
    assert get(client, order.order_no, email=order.email).status_code == 200


def test_no_password_hasher_runs_for_email_or_new_style_password_lookups(client, monkeypatch):
    order = OrderFactory(
        email="buyer@example.com",
        query_password_hash=query_password_hash("hunter2!"),
    )

    def forbidden(*args, **kwargs):
        raise AssertionError("a Django password hasher ran during an order lookup")

    for name in ("check_password", "make_password", "identify_hasher", "get_hasher"):
        monkeypatch.setattr(hashers, name, forbidden)
        monkeypatch.setattr(access, name, forbidden, raising=False)
    monkeypatch.setattr(PBKDF2PasswordHasher, "encode", forbidden)
    monkeypatch.setattr(PBKDF2PasswordHasher, "verify", forbidden)

    no = order.order_no
    assert get(client, no, email="buyer@example.com").status_code == 200
    assert get(client, no, query_password="hunter2!").status_code == 200
    assert get(client, no, email="wrong@example.com").status_code == 404
    assert get(client, no, query_password="wrong").status_code == 404
    assert get(client, "K000000NOPE", email="buyer@example.com").status_code == 404
    assert get(client, "K000000NOPE", query_password="hunter2!").status_code == 404


# --- timing: "unknown order" must cost what "wrong credentials" costs ---------------------
#
# Each sample times a small batch of calls; the two sides are interleaved in random order, so
# drift, frequency scaling and noisy neighbours hit both alike, and gc is off while timing.
# The medians are compared with a generous ratio: a scheduler hiccup moves neither median, a
# branch or two of difference moves it by far less than 3x, but ~200 ms of PBKDF2 on one side
# against microseconds on the other is a ratio in the thousands. No absolute time is asserted.

SAMPLES = 400
BATCH = 10
MAX_MEDIAN_RATIO = 3.0


def _timings(
    a: Callable[[], object], b: Callable[[], object], *, samples: int, batch: int
) -> tuple[list[int], list[int]]:
    rng = random.Random(1234)
    times: dict[str, list[int]] = {"a": [], "b": []}
    sides = {"a": a, "b": b}
    for fn in (a, b):  # warm up caches and lazy imports before measuring
        for _ in range(batch):
            fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(samples):
            order = ["a", "b"]
            rng.shuffle(order)
            for side in order:
                fn = sides[side]
                start = time.perf_counter_ns()
                for _ in range(batch):
                    fn()
                times[side].append(time.perf_counter_ns() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times["a"], times["b"]


def _median_ratio(a: list[int], b: list[int]) -> float:
    ma, mb = statistics.median(a), statistics.median(b)
    return max(ma, mb) / max(min(ma, mb), 1)


def assert_same_cost(a: Callable[[], object], b: Callable[[], object]) -> None:
    ta, tb = _timings(a, b, samples=SAMPLES, batch=BATCH)
    ratio = _median_ratio(ta, tb)
    assert ratio < MAX_MEDIAN_RATIO, (
        f"median batch times differ {ratio:.1f}x "
        f"({statistics.median(ta):.0f} ns vs {statistics.median(tb):.0f} ns per {BATCH} calls)"
    )


def test_timing_check_detects_one_sided_slow_hashing():
    """The comparison is not vacuous: one side doing real key stretching (here a cheap
    PBKDF2, far less than the 1,000,000 rounds a lookup used to cost) is caught."""

    def fast():
        return credentials_match(None, email="nobody@example.com")

    def slow():
        hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 5000)
        return fast()

    ta, tb = _timings(fast, slow, samples=50, batch=1)
    assert _median_ratio(ta, tb) > MAX_MEDIAN_RATIO


def test_wrong_email_costs_the_same_as_unknown_order():
    order = OrderFactory(email="buyer@example.com")
    assert_same_cost(
        lambda: credentials_match(order, email="wrong@example.com"),
        lambda: credentials_match(None, email="wrong@example.com"),
    )


def test_wrong_password_costs_the_same_as_unknown_order():
    order = OrderFactory(query_password_hash=query_password_hash("pw"))
    no_password = OrderFactory(product=order.product, query_password_hash="")
    assert_same_cost(
        lambda: credentials_match(order, query_password="wrong"),
        lambda: credentials_match(None, query_password="wrong"),
    )
    assert_same_cost(
        lambda: credentials_match(no_password, query_password="wrong"),
        lambda: credentials_match(None, query_password="wrong"),
    )


def test_order_lookup_timing_does_not_reveal_existence():
    """The whole lookup (database query and failure counting included), with a fresh IP per
    call so the rate limit never trips."""
    order = OrderFactory(
        email="buyer@example.com",
        query_password_hash=query_password_hash("pw"),
    )
    ips = (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(10**6))

    def lookup(order_no: str, **credentials):
        return lambda: order_lookup(order_no=order_no, ip=next(ips), **credentials)

    for credentials in ({"email": "wrong@example.com"}, {"query_password": "wrong"}):
        ta, tb = _timings(
            lookup(order.order_no, **credentials),
            lookup("K000000NOPE", **credentials),
            samples=100,
            batch=2,
        )
        assert _median_ratio(ta, tb) < MAX_MEDIAN_RATIO, credentials


def test_checkout_stores_a_keyed_hash_never_the_password(client):
    from orders.services import CheckoutRequest, order_create
    from tests.factories import stock_product

    stock_product(1, slug="qp")
    order = order_create(
        req=CheckoutRequest(product="qp", quantity=1, email="qp@example.com", query_password="s3")
    )
    assert order.query_password_hash.startswith("hmac_sha256$")
    assert "s3" not in order.query_password_hash
    response = client.get(f"/api/v1/orders/{order.order_no}", {"query_password": "s3"})
    assert response.status_code == 200
