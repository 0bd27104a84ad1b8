"""Issue #9, HIGH: a staff login saw an order's number beside its buyer's email, which is all
the public lookup (``GET /api/v1/orders/{no}?email=…``) asks before it hands out the keys.

Every admin page a non-owner can reach is collected by following links from the index, plus
the searches support would run; the buyer's email must appear on none of them, and what is
shown in its place must not open the lookup."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import OrderStatus, PaymentEvent
from orders.outbox.models import (
    AttemptOutcome,
    MessageAttempt,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    OutboxMessage,
)
from riskrules.models import BlocklistEntry, RiskDecision
from riskrules.services import review_blocklist_buyer
from tests.admin.helpers import admin_login, crawl, emails_in, perms_user, role_user
from tests.admin.test_admin import delivered_order
from tests.factories import OrderFactory, ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

VICTIM = "victim.buyer@example.com"
HELD = "held.buyer@example.org"
KEY = "VICTIM-KEY-0001"
_SHOWN_EMAIL = re.compile(r'field-email[^"]*".*?<div class="readonly">(.*?)</div>', re.S)


@pytest.fixture
def orders_with_buyers():
    """A delivered order whose history names its buyer, and a paid order waiting in the review
    queue with its risk decision: the places a buyer's email is stored."""
    from orders.events import event_commission_skipped

    product = ProductFactory(name="Gift card")
    delivered = delivered_order(product, KEY)
    delivered.email = VICTIM
    delivered.save(update_fields=["email"])
    event_commission_skipped(delivered, reason=f"referral by {VICTIM} refused")
    held = OrderFactory(
        product=product, email=HELD, status=OrderStatus.ON_HOLD, paid_at=timezone.now()
    )
    RiskDecision.objects.create(
        rule_name="Blocklist",
        rule_kind="blocklist",
        outcome="hold",
        order=held,
        email=HELD,
        message=f"Blocklist: Email address: {HELD}",
        inputs={"kind": "email", "value": HELD},
    )
    owner = User.objects.create_superuser("the-owner", "o@shop.test", "owner-Pass-123")
    review_blocklist_buyer(order_id=held.pk, actor=owner, kind=BlocklistEntry.Kind.EMAIL)
    PaymentEvent.objects.create(
        provider="stripe",
        event_id="evt_victim",
        type="checkout.session.completed",
        payload={"data": {"object": {"customer_details": {"email": VICTIM}}}},
        headers={"Stripe-Signature": "t=1,v1=x"},
        order=delivered,
        last_error=f"KeyError while mailing {VICTIM}",
    )
    message = OutboxMessage.objects.create(
        purpose=MessagePurpose.DELIVERY,
        order=delivered,
        channel=MessageChannel.EMAIL,
        recipient=VICTIM,
        payload={},
        idempotency_key=f"delivery:{delivered.order_no}:email",
        status=MessageStatus.FAILED,
        attempts=1,
        next_attempt_at=timezone.now(),
        last_error=f"550 mailbox {VICTIM} unavailable",
    )
    MessageAttempt.objects.create(
        message=message,
        order=delivered,
        started_at=timezone.now(),
        number=1,
        channel=MessageChannel.EMAIL,
        outcome=AttemptOutcome.FAILED,
        error=f"550 mailbox {VICTIM} unavailable",
    )
    return delivered, held


def _login(who: str) -> Client:
    if who == "view_order only":
        return admin_login(perms_user("orders.view_order"))
    if who == "every view permission":
        # Not a role: the widest a non-owner could be given, so every admin's masking is seen.
        views = Permission.objects.filter(codename__startswith="view_").select_related(
            "content_type"
        )
        labels = [f"{p.content_type.app_label}.{p.codename}" for p in views]
        return admin_login(perms_user(*labels, "riskrules.review_order"))
    return admin_login(role_user(who))


WHO = ["view_order only", "staff", "finance", "every view permission"]


@pytest.mark.parametrize("who", WHO)
def test_no_admin_page_a_non_owner_reaches_shows_a_buyer_email(orders_with_buyers, who):
    delivered, held = orders_with_buyers
    client = _login(who)
    change = reverse("admin:orders_order_change", args=[delivered.pk])
    changelist = reverse("admin:orders_order_changelist")
    pages = crawl(
        client,
        "/admin/",
        changelist,
        change,
        reverse("admin:orders_order_history", args=[delivered.pk]),
        f"{changelist}?q={delivered.order_no}",
        f"{changelist}?q={held.order_no}",
        reverse("admin:riskrules_revieworder_changelist"),
        f"{reverse('admin:riskrules_revieworder_changelist')}?q={held.order_no}",
        reverse("admin:orders_outboxmessage_changelist"),
        reverse("admin:orders_outboxmessage_change", args=[delivered.messages.get().pk]),
    )
    assert change in pages  # the order itself is readable: this is a support login
    assert delivered.order_no in pages[change]
    for url, html in pages.items():
        text = unescape(html).lower()
        for email in (VICTIM, HELD):
            assert email not in text, f"{email} shown on {url}"
            assert quote(email).lower() not in text, f"{email} shown (quoted) on {url}"


@pytest.mark.parametrize("who", WHO)
def test_what_a_non_owner_is_shown_does_not_open_the_lookup(orders_with_buyers, who):
    delivered, _ = orders_with_buyers
    client = _login(who)
    html = client.get(reverse("admin:orders_order_change", args=[delivered.pk])).content.decode()
    shown = [unescape(value).strip() for value in _SHOWN_EMAIL.findall(html)]
    assert shown, "the order page shows something in the email's place"
    candidates = set(shown) | emails_in(html)

    public = Client()
    for candidate in sorted(candidates):
        response = public.get(f"/api/v1/orders/{delivered.order_no}", {"email": candidate})
        assert response.status_code == 404, f"the lookup opened with {candidate!r}"
        assert KEY not in response.content.decode()
    # The control: the real email does open it, so the 404s above mean something.
    opened = public.get(f"/api/v1/orders/{delivered.order_no}", {"email": VICTIM})
    assert opened.status_code == 200 and KEY in opened.content.decode()


@pytest.mark.parametrize("who", WHO)
def test_a_non_owner_cannot_find_orders_by_buyer_email(orders_with_buyers, who):
    """Searching by an email one already knows would hand back its order numbers: the other
    half of the lookup. Non-owners search by exact order number only."""
    delivered, held = orders_with_buyers
    client = _login(who)
    for email in (VICTIM, "victim.buyer@", HELD):
        response = client.get(reverse("admin:orders_order_changelist"), {"q": email})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []
    found = client.get(reverse("admin:orders_order_changelist"), {"q": delivered.order_no})
    assert [o.pk for o in found.context["cl"].result_list] == [delivered.pk]


def test_the_owner_still_sees_and_searches_buyer_emails(orders_with_buyers):
    delivered, _ = orders_with_buyers
    client = admin_login(role_user("owner"))
    html = client.get(reverse("admin:orders_order_change", args=[delivered.pk])).content.decode()
    assert VICTIM in html
    response = client.get(reverse("admin:orders_order_changelist"), {"q": "victim.buyer@"})
    assert [o.pk for o in response.context["cl"].result_list] == [delivered.pk]
