"""Attribution: the ?ref cookie and click log, the API's ref, windows, first vs last click,
and self-referral refusals."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from commissions.attribution import email_identity, ip_hash
from commissions.middleware import REF_COOKIE
from commissions.models import (
    Attribution,
    CommissionSettings,
    LedgerEntry,
    PromoterSighting,
    ReferralClick,
)
from orders.models import Order, OrderStatus
from tests.commissions.factories import PromoterFactory, UserFactory
from tests.commissions.helpers import assert_reconciles, entries
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def buy(client, product, email="someone@example.net", path=None):
    response = client.post(
        path or f"/p/{product.slug}", {"email": email, "quantity": "1"}, REMOTE_ADDR="192.0.2.50"
    )
    assert response.status_code == 302, response.content
    return Order.objects.latest("created_at")


def test_ref_link_logs_the_click_and_sets_a_cookie_that_attributes_the_order(
    client, product, promoter
):
    response = client.get(
        "/?ref=alice",
        HTTP_REFERER="https://forum.example/t/1",
        HTTP_USER_AGENT="Mozilla/5.0 Test",
        REMOTE_ADDR="192.0.2.50",
    )
    assert response.status_code == 200
    cookie = response.cookies[REF_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 30 * 24 * 3600
    click = ReferralClick.objects.get()
    assert click.promoter == promoter
    assert click.landing_path == "/?ref=alice"
    assert click.referrer == "https://forum.example/t/1"
    assert click.user_agent == "Mozilla/5.0 Test"
    assert click.ip_hash == ip_hash("192.0.2.50") and "192.0.2.50" not in click.ip_hash

    order = buy(client, product)  # later, on another page, without ?ref
    assert order.ref_code == "ALICE"
    a = order.attribution
    assert (a.status, a.promoter, a.upline.code) == ("attributed", promoter, "UP")


def test_unknown_codes_log_no_click_and_never_displace_a_real_one(client, product, promoter):
    client.get("/?ref=ALICE")
    assert REF_COOKIE not in client.get("/?ref=NOPE").cookies
    promoter.status = "suspended"
    promoter.save()
    client.get("/?ref=ALICE")
    assert ReferralClick.objects.count() == 1  # only the first, active click
    promoter.status = "active"
    promoter.save()
    assert buy(client, product).attribution.promoter == promoter


def test_an_unknown_code_is_remembered_and_recorded_as_unknown(client, product):
    assert client.get("/?ref=LATER").cookies[REF_COOKIE]
    order = buy(client, product)
    assert (order.ref_code, order.attribution.status) == ("LATER", "unknown")
    assert not ReferralClick.objects.exists()


def test_api_ref_field_attributes_the_order(client, product, promoter):
    response = client.post(
        "/api/v1/orders",
        {"product": product.slug, "quantity": 1, "email": "api@example.net", "ref": "alice"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    order = Order.objects.get(order_no=response.json()["order_no"])
    assert order.attribution.promoter == promoter
    assert order.attribution.status == Attribution.Status.ATTRIBUTED


def test_last_click_wins_by_default(client, product, promoter):
    PromoterFactory(code="BOB")
    client.get("/?ref=ALICE")
    client.get(f"/p/{product.slug}?ref=BOB")
    assert buy(client, product).attribution.promoter.code == "BOB"
    assert ReferralClick.objects.count() == 2


def test_first_click_keeps_the_first_promoter_when_the_owner_says_so(client, product, promoter):
    conf = CommissionSettings.load()
    conf.attribution_model = CommissionSettings.AttributionModel.FIRST_CLICK
    conf.save()
    PromoterFactory(code="BOB")
    client.get("/?ref=ALICE")
    client.get("/?ref=BOB")
    # Even a checkout posted from a ?ref=BOB URL keeps the first click.
    order = buy(client, product, path=f"/p/{product.slug}?ref=BOB")
    assert order.attribution.promoter.code == "ALICE"
    assert ReferralClick.objects.count() == 3  # every visit is still logged (two addresses)


def test_cookie_expires_after_the_window(client, product, promoter):
    past = timezone.now() - timedelta(days=31)
    with mock.patch("django.core.signing.time.time", return_value=past.timestamp()):
        client.get("/?ref=ALICE")
    assert buy(client, product).ref_code == ""

    conf = CommissionSettings.load()
    conf.attribution_window_days = 60
    conf.save()
    with mock.patch("django.core.signing.time.time", return_value=past.timestamp()):
        client.get("/?ref=ALICE")
    assert buy(client, product).attribution.promoter == promoter


def test_first_click_window_runs_from_the_first_click(client, product, promoter):
    conf = CommissionSettings.load()
    conf.attribution_model = CommissionSettings.AttributionModel.FIRST_CLICK
    conf.save()
    PromoterFactory(code="BOB")
    past = timezone.now() - timedelta(days=31)
    with mock.patch("django.core.signing.time.time", return_value=past.timestamp()):
        client.get("/?ref=ALICE")
    client.get("/?ref=BOB")  # the first cookie has expired: BOB is now the first click
    assert buy(client, product).attribution.promoter.code == "BOB"


@pytest.mark.parametrize(
    ("email", "same"),
    [
        ("alice.smith@gmail.com", True),
        ("AliceSmith+deals@GoogleMail.com", True),
        ("a.l.i.c.e.smith@gmail.com", True),
        ("alicesmith@example.com", False),
    ],
)
def test_email_identity_folds_case_tags_and_gmail_dots(email, same):
    assert (email_identity(email) == email_identity("alicesmith@gmail.com")) is same


def test_self_referral_by_own_email_is_refused_and_recorded(checkout, sell):
    PromoterFactory(code="SELF", user=UserFactory(username="me", email="Me.Myself@gmail.com"))
    order = sell(ref="SELF", email="memyself+shop@gmail.com")
    a = order.attribution
    assert (a.status, a.refusal) == ("refused", "own_email")
    from commissions.models import LedgerEntry

    assert not LedgerEntry.objects.exists()


def test_self_referral_by_own_account_is_refused(client, product, promoter):
    client.force_login(promoter.user)
    client.get("/?ref=ALICE")  # the promoter's own click is neither logged nor needed
    assert not ReferralClick.objects.exists()
    order = buy(client, product, path=f"/p/{product.slug}?ref=ALICE")
    assert (order.attribution.status, order.attribution.refusal) == ("refused", "own_account")


def test_self_referral_from_the_promoters_ip_within_the_window_is_refused(
    client, product, promoter, checkout
):
    client.force_login(promoter.user)
    client.get("/promoter/", REMOTE_ADDR="203.0.113.77")  # the promoter browses, logged in
    assert PromoterSighting.objects.filter(promoter=promoter).count() == 1
    order = checkout(ref="ALICE", ip="203.0.113.77")
    assert (order.attribution.status, order.attribution.refusal) == ("refused", "same_ip")

    PromoterSighting.objects.update(last_seen=timezone.now() - timedelta(days=31))
    later = checkout(ref="ALICE", ip="203.0.113.77")
    assert later.attribution.status == "attributed"  # outside the window the IP is anyone's


def test_upline_buying_through_their_recruit_gets_no_team_reward(sell, promoter, upline):
    order = sell(ref="ALICE", email=upline.user.email)
    a = order.attribution
    assert (a.status, a.upline, a.upline_refusal) == ("attributed", None, "own_email")
    assert list(LedgerEntry.objects.values_list("level", "amount")) == [(1, 1000)]


# --- Attribution is frozen at checkout ------------------------------------------------------


def test_changing_the_upline_after_checkout_keeps_the_team_reward_with_the_old_one(
    checkout, deliver, sell, promoter, upline
):
    order = checkout(ref="ALICE")
    vee = PromoterFactory(code="VEE")
    promoter.upline = vee
    promoter.save()

    deliver(completed_event(order))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert entries(order) == {(1, "ALICE"): 1000, (2, "UP"): 300}
    assert not LedgerEntry.objects.filter(promoter=vee).exists()

    # The new upline counts from the next checkout on.
    assert entries(sell()) == {(1, "ALICE"): 1000, (2, "VEE"): 300}
    assert_reconciles()


def test_a_new_ref_cookie_between_checkout_and_payment_changes_nothing(
    client, product, promoter, django_capture_on_commit_callbacks
):
    bob = PromoterFactory(code="BOB")
    client.get("/?ref=ALICE")
    client.post(f"/p/{product.slug}", {"email": "buyer@example.net", "quantity": "1"})
    order = Order.objects.get()
    assert (order.ref_code, order.attribution.promoter) == ("ALICE", promoter)

    # The buyer follows BOB's link to the payment page, then pays: the cookie now says BOB.
    assert REF_COOKIE in client.get(f"/pay/sandbox/{order.order_no}?ref=BOB").cookies
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/pay/sandbox/{order.order_no}")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.ref_code == "ALICE" and order.attribution.promoter == promoter
    assert entries(order) == {(1, "ALICE"): 1000, (2, "UP"): 300}
    assert not LedgerEntry.objects.filter(promoter=bob).exists()

    # The cookie did change: the browser's next order is BOB's.
    client.post(f"/p/{product.slug}", {"email": "buyer@example.net", "quantity": "1"})
    assert Order.objects.latest("created_at").attribution.promoter == bob


def test_reloading_a_referral_link_is_one_click_per_address(client, promoter):
    for _ in range(30):
        client.get("/?ref=ALICE", REMOTE_ADDR="192.0.2.77")
    assert ReferralClick.objects.count() == 1
    client.get("/?ref=ALICE", REMOTE_ADDR="192.0.2.78")
    assert ReferralClick.objects.count() == 2
