"""After the sale (issue 12): the five-minute key guide, the follow-ups per product with their
one-click unsubscribe (RFC 8058), the survey, the owner's templates with preview and A/B, and
the keys' .txt download."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from orders.access import COOKIE, grant_access
from orders.followups.models import (
    FollowUp,
    FollowUpPurpose,
    FollowUpState,
    MessageTemplate,
    ProductFollowUps,
    SurveyResponse,
    Unsubscribe,
)
from orders.followups.selectors import (
    recommendations_for,
    survey_scores_by_product,
    variant_counts,
)
from orders.followups.services import followups_send_due
from orders.followups.templates import choose_variant, variant_for
from orders.followups.tokens import survey_token, unsubscribe_token
from orders.models import MessageChannel, MessagePurpose, Order, OrderStatus, OutboxMessage
from orders.outbox.dispatch import messages_dispatch
from orders.outbox.models import InboxMessage
from orders.payments.inbox import payment_event_receive
from orders.payments.processing import payment_event_process
from orders.payments.stripe_events import encode, sign_payload
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    def _pay(order: Order) -> Order:
        payload = encode(completed_event(order))
        with django_capture_on_commit_callbacks(execute=False):
            event, _ = payment_event_receive(
                payload=payload, signature=sign_payload(payload, settings.STRIPE_WEBHOOK_SECRET)
            )
            assert payment_event_process(event_id=event.pk)
        order.refresh_from_db()
        return order

    return _pay


def later(**delta) -> timezone.datetime:
    return timezone.now() + timedelta(**delta)


def sweep(**delta) -> int:
    """The periodic task at a moment ``delta`` from now, then the outbox sends what it wrote."""
    queued = followups_send_due(now=later(**delta))
    OutboxMessage.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    messages_dispatch()
    return queued


def mails(purpose: str) -> list:
    return [m for m in mail.outbox if m.extra_headers["X-Kami-Message"].startswith(purpose)]


def buyer_client(client, order_no: str):
    response = HttpResponse()
    grant_access(RequestFactory().get("/"), response, order_no)
    client.cookies[COOKIE] = response.cookies[COOKIE].value
    return client


def follow_ups_on(product, **fields) -> ProductFollowUps:
    defaults = {
        "send_how_to": True,
        "how_to_html": "<p>Open the app</p><script>x()</script><img src='https://i.test/a.png'>",
        "video_url": "https://video.test/how",
        "send_check_in": True,
        "send_recommendation": True,
        "send_survey": True,
    }
    return ProductFollowUps.objects.create(product=product, **{**defaults, **fields})


# --- The confirmation flow -----------------------------------------------------------------


def test_the_key_guide_goes_five_minutes_after_delivery_by_the_next_channel(pay, settings):
    settings.SMS_BACKEND = "logging"
    order = pay(OrderFactory(product=stock_product(1, slug="g"), phone="+15551234567"))
    messages_dispatch()  # the delivery email
    assert sweep(minutes=4) == 0  # not yet due (the how-to is off for this product)
    assert not OutboxMessage.objects.filter(purpose=MessagePurpose.KEY_GUIDE).exists()

    assert sweep(minutes=6) == 1
    guide = OutboxMessage.objects.get(purpose=MessagePurpose.KEY_GUIDE)
    assert guide.channel == MessageChannel.SMS  # the delivery went by email: the next one
    assert guide.status == "sent"
    assert sweep(minutes=60) == 0  # exactly once
    assert OutboxMessage.objects.filter(purpose=MessagePurpose.KEY_GUIDE).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(order=order, purpose=FollowUpPurpose.KEY_GUIDE, due_at=later())


def test_the_key_guide_is_not_sent_when_the_order_page_was_opened(pay, client):
    order = pay(OrderFactory(product=stock_product(1, slug="g")))
    messages_dispatch()
    assert buyer_client(client, order.order_no).get(f"/o/{order.order_no}").status_code == 200
    order.refresh_from_db()
    assert order.viewed_at is not None
    assert sweep(minutes=6) == 0
    row = FollowUp.objects.get(order=order, purpose=FollowUpPurpose.KEY_GUIDE)
    assert row.state == FollowUpState.SKIPPED and "opened" in row.reason
    assert not OutboxMessage.objects.filter(purpose=MessagePurpose.KEY_GUIDE).exists()


def test_a_view_before_delivery_does_not_count(client):
    order = OrderFactory(product=stock_product(1, slug="g"))
    buyer_client(client, order.order_no).get(f"/o/{order.order_no}")
    order.refresh_from_db()
    assert order.viewed_at is None


def test_the_key_guide_email_is_transactional_without_unsubscribe(pay):
    pay(OrderFactory(product=stock_product(1, slug="g")))  # no phone: email again
    messages_dispatch()
    sweep(minutes=6)
    (guide,) = mails("key_guide")
    assert "List-Unsubscribe" not in guide.extra_headers
    assert "spam" in guide.body


def test_the_order_page_says_where_the_keys_are_and_where_the_email_went(pay, client):
    order = pay(OrderFactory(product=stock_product(2, slug="g"), quantity=2, email="jo@ex.test"))
    page = buyer_client(client, order.order_no).get(f"/o/{order.order_no}").content.decode()
    assert "on its way by email to <strong>j•••@ex.test</strong>" in page
    messages_dispatch()
    page = client.get(f"/o/{order.order_no}").content.decode()
    assert "We emailed a copy to <strong>j•••@ex.test</strong>" in page
    assert "jo@ex.test" not in page


# --- Follow-ups per product and their unsubscribe ------------------------------------------


def test_each_follow_up_goes_once_at_its_time_with_one_click_unsubscribe(pay):
    product = stock_product(1, slug="p")
    follow_ups_on(product)
    other = stock_product(3, slug="other", name="Other thing")
    # Another buyer of p also bought "Other thing": the recommendation.
    pay(OrderFactory(product=product, email="x@ex.test"))
    pay(OrderFactory(product=other, email="x@ex.test"))
    mail.outbox.clear()
    assert sweep() >= 1  # right away: the how-to of x@'s order of p
    (how_to,) = mails("how_to")
    assert how_to.to == ["x@ex.test"]
    assert "Open the app" in how_to.body and "x()" not in how_to.alternatives[0][0]
    assert "https://video.test/how" in how_to.body
    link = how_to.extra_headers["List-Unsubscribe"]
    assert link.startswith(f"<{settings.SITE_URL}/u/") and link.endswith(">")
    assert how_to.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    sweep(days=3, minutes=1)
    assert len(mails("check_in")) == 1
    sweep(days=5, minutes=1)
    (survey,) = mails("survey")
    assert "/survey/" in survey.body and "List-Unsubscribe" in survey.extra_headers
    sweep(days=7, minutes=1)
    (recommendation,) = mails("recommendation")
    assert "Other thing" in recommendation.body
    sweep(days=30)
    for purpose in ("how_to", "check_in", "survey", "recommendation"):
        assert len(mails(purpose)) == 1, purpose


def test_the_one_click_post_unsubscribes_without_csrf_and_later_follow_ups_are_skipped(pay):
    from django.test import Client

    product = stock_product(1, slug="p")
    follow_ups_on(product)
    order = pay(OrderFactory(product=product, email="Me@Ex.test"))
    sweep()
    (how_to,) = mails("how_to")
    url = how_to.extra_headers["List-Unsubscribe"].strip("<>").removeprefix(settings.SITE_URL)
    strict = Client(enforce_csrf_checks=True)
    assert strict.get(url).status_code == 200  # a confirm page; GET changes nothing
    assert not Unsubscribe.objects.exists()
    response = strict.post(
        url,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Unsubscribe.objects.get().source == "one-click"

    sweep(days=10)
    assert mails("check_in") == [] and mails("survey") == [] and mails("recommendation") == []
    reasons = set(
        FollowUp.objects.filter(order=order)
        .exclude(purpose__in=["how_to", "key_guide"])
        .values_list("reason", flat=True)
    )
    assert reasons == {"the buyer unsubscribed"}


@pytest.mark.parametrize("chain", ["email,sms,inbox", "inbox,email"])
def test_an_unsubscribe_after_the_follow_up_was_queued_stops_it_on_every_channel(
    pay, client, settings, chain
):
    """The sweep wrote the outbox row while the buyer was still subscribed; the unsubscribe
    lands before the dispatcher sends it. Nothing goes out, by the first channel (a network
    one, or the in-transaction inbox) or by any fallback, and the attempt says why."""
    settings.SMS_BACKEND = "logging"
    product = stock_product(2, slug="p", message_channels=chain)
    follow_ups_on(product)
    order = pay(OrderFactory(product=product, email="Me@Ex.test", phone="+15551234567"))
    messages_dispatch()  # the delivery
    mail.outbox.clear()
    assert followups_send_due(now=later(minutes=1)) == 1  # the how-to, queued
    queued = OutboxMessage.objects.get(purpose=MessagePurpose.HOW_TO)
    assert queued.status == "pending" and queued.fallback  # there is a channel to fall to

    unsubscribe = f"/u/{unsubscribe_token(order.buyer_identity)}"
    assert client.post(unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 200
    OutboxMessage.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    messages_dispatch()

    (how_to,) = OutboxMessage.objects.filter(purpose=MessagePurpose.HOW_TO)  # no fallback row
    assert how_to.status == "skipped" and how_to.last_error == "the buyer unsubscribed"
    (attempt,) = how_to.attempt_log.all()
    assert (attempt.outcome, attempt.error) == ("skipped", "the buyer unsubscribed")
    assert attempt.finished_at is not None
    assert mails("how_to") == [] and not InboxMessage.objects.filter(message=how_to).exists()

    sweep(minutes=6)  # the key guide is about the order itself: it still goes
    assert OutboxMessage.objects.get(purpose=MessagePurpose.KEY_GUIDE).status == "sent"


def test_a_forged_unsubscribe_token_is_refused(client):
    token = unsubscribe_token("me@ex.test")
    assert client.post(f"/u/{token[:-2]}xx").status_code == 404
    assert not Unsubscribe.objects.exists()
    assert client.post(f"/u/{token}").status_code == 200
    assert Unsubscribe.objects.get().identity == "me@ex.test"


def test_follow_ups_of_a_refunded_order_are_skipped(pay):
    product = stock_product(1, slug="p")
    follow_ups_on(product)
    order = pay(OrderFactory(product=product))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)
    assert sweep(days=10) == 0
    assert mail.outbox[1:] == []  # the delivery email only
    assert set(FollowUp.objects.values_list("state", flat=True)) == {FollowUpState.SKIPPED}


def test_follow_ups_switched_off_are_skipped(pay):
    pay(OrderFactory(product=stock_product(1, slug="p")))
    sweep(days=10)
    assert {r for r in FollowUp.objects.values_list("reason", flat=True)} >= {
        "off for this product"
    }
    assert not OutboxMessage.objects.exclude(
        purpose__in=[MessagePurpose.DELIVERY, MessagePurpose.KEY_GUIDE]
    ).exists()


def test_recommendations_are_what_other_buyers_of_the_product_bought(
    pay, django_assert_num_queries
):
    p, a, b = (stock_product(5, slug=s, name=s.upper()) for s in ("p", "a", "b"))
    for email, products in {"1@x.test": [p, a, b], "2@x.test": [p, a], "3@x.test": [b]}.items():
        for product in products:
            pay(OrderFactory(product=product, email=email))
    with django_assert_num_queries(1):
        found = recommendations_for(product_id=p.pk)
    assert [(r["name"], r["buyers"]) for r in found] == [("A", 2), ("B", 1)]


# --- The survey ----------------------------------------------------------------------------


def test_the_survey_stores_one_answer_per_order_and_the_selector_averages(pay, client):
    product = stock_product(2, slug="p")
    first = pay(OrderFactory(product=product))
    second = pay(OrderFactory(product=product))
    url = reverse("survey", args=[survey_token(first.order_no)])
    assert client.get(url).status_code == 200
    assert client.post(url, {"score": "9"}).status_code == 400
    assert client.post(url, {"score": "2", "comment": "meh"}).status_code == 200
    assert client.post(url, {"score": "4", "comment": "better"}).status_code == 200  # replaces
    client.post(reverse("survey", args=[survey_token(second.order_no)]), {"score": "5"})
    assert SurveyResponse.objects.count() == 2
    assert SurveyResponse.objects.get(order=first).comment == "better"
    (row,) = survey_scores_by_product()
    assert (row["product_id"], row["average"], row["answers"]) == (product.pk, 4.5, 2)
    assert client.get("/survey/forged:token").status_code == 404


# --- Templates, preview, A/B ---------------------------------------------------------------


def test_the_owners_template_is_used_escaped_in_html_and_cannot_reach_files(pay):
    product = stock_product(1, slug="p")
    follow_ups_on(product)
    MessageTemplate.objects.create(
        purpose=FollowUpPurpose.HOW_TO,
        product=product,
        subject="Tips for {{ product }} #{{ order_no }}",
        body="Hi {{ buyer_name }} <b>{{ product }}</b> {{ order_url }}",
    )
    product.name = "<Evil>"
    product.save()
    order = pay(OrderFactory(product=product, email="ann@ex.test"))
    sweep()
    (how_to,) = mails("how_to")
    assert how_to.subject == f"Tips for <Evil> #{order.order_no}"
    assert "Hi ann <b><Evil></b>" in how_to.body
    assert "&lt;Evil&gt;" in how_to.alternatives[0][0]
    bad = MessageTemplate(purpose="check_in", subject="x", body="{% include 'base.html' %}")
    bad.full_clean()  # compiles; rendering finds no file:
    from orders.followups.templates import render_wording

    with pytest.raises(Exception, match="base.html"):
        render_wording(subject="x", body=bad.body, context={})
    with pytest.raises(Exception, match="body"):
        MessageTemplate(purpose="check_in", subject="x", body="{% if %}").full_clean()


def test_the_ab_variant_is_deterministic_stored_and_counted(pay):
    product = stock_product(12, slug="p")
    for variant in ("a", "b"):
        MessageTemplate.objects.create(
            purpose=FollowUpPurpose.KEY_GUIDE,
            variant=variant,
            subject=f"V{variant}",
            body=f"variant {variant}",
        )
    orders = [pay(OrderFactory(product=product)) for _ in range(12)]
    sweep(minutes=6)
    for order in orders:
        row = FollowUp.objects.get(order=order, purpose=FollowUpPurpose.KEY_GUIDE)
        assert row.variant == variant_for(order.order_no, "key_guide")
        assert row.variant == choose_variant(
            order_no=order.order_no, purpose="key_guide", product_id=product.pk
        )
        message = OutboxMessage.objects.get(order=order, purpose="key_guide")
        assert message.payload == {"variant": row.variant}
        (sent,) = [m for m in mails("key_guide") if m.to == [order.email]]
        assert sent.subject == f"V{row.variant}"
    counts = variant_counts(purpose="key_guide")
    assert sum(r["orders"] for r in counts) == 12 and all(r["didnt_receive"] == 0 for r in counts)
    assert {r["variant"] for r in counts} == {"a", "b"}

    from orders.support.tickets import ticket_open

    ticket_open(order=orders[0], kind="key_missing", message="no key?", client_ip="192.0.2.1")
    ticket_open(order=orders[1], kind="other", message="how do I…", client_ip="192.0.2.2")
    counts = {r["variant"]: r["didnt_receive"] for r in variant_counts(purpose="key_guide")}
    first = FollowUp.objects.get(order=orders[0], purpose=FollowUpPurpose.KEY_GUIDE).variant
    assert counts[first] == 1 and sum(counts.values()) == 1


def test_the_admin_previews_a_template_with_a_sample_order(pay, admin_client):
    product = stock_product(1, slug="p", name="Gizmo")
    order = pay(OrderFactory(product=product))
    template = MessageTemplate.objects.create(
        purpose=FollowUpPurpose.CHECK_IN,
        product=product,
        subject="Hey {{ product }}",
        body="#{{ order_no }}",
    )
    page = admin_client.get(reverse("admin:orders_messagetemplate_change", args=[template.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Hey Gizmo" in text and f"#{order.order_no}" in text
    assert (
        admin_client.get(reverse("admin:shop_product_change", args=[product.pk])).status_code == 200
    )


# --- The keys as a .txt file ---------------------------------------------------------------


def test_the_keys_txt_follows_the_order_pages_access_rule(pay, client):
    order = pay(OrderFactory(product=stock_product(3, slug="t"), quantity=3))
    url = reverse("order-keys-txt", args=[order.order_no])
    assert client.get(url).status_code == 404  # a stranger
    response = buyer_client(client, order.order_no).get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{order.order_no}-keys.txt"'
    assert response["Cache-Control"] == "no-store"
    assert response.content.decode().splitlines() == ["t-KEY-0", "t-KEY-1", "t-KEY-2"]
    page = client.get(f"/o/{order.order_no}").content.decode()
    assert 'data-testid="copy-all"' in page and url in page
    undelivered = OrderFactory(product=stock_product(1, slug="u"))
    assert (
        buyer_client(client, undelivered.order_no)
        .get(reverse("order-keys-txt", args=[undelivered.order_no]))
        .status_code
        == 404
    )
