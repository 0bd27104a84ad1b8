"""The owner's promoter admin (``commissions/admin.py``): approving promoters, which pays
nobody."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from commissions.models import LedgerEntry, Promoter
from commissions.selectors import Balances, promoter_balances
from tests.commissions.factories import PromoterFactory
from tests.commissions.helpers import entries, set_conf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_admin_approve_action_activates_pending_promoters_only(client, sell, upline):
    set_conf(approval_required=True)
    client.post(
        "/promoter/join",
        {
            "username": "newbie",
            "email": "newbie@example.org",
            "password": "a-Long-pass-99",
            "upline": "UP",
        },
    )
    newbie = Promoter.objects.get(user__username="newbie")
    assert (newbie.status, newbie.upline) == ("pending", upline)
    assert entries(sell(ref=newbie.code)) == {}  # a pending promoter earns nothing yet
    suspended = PromoterFactory(code="SUSP", status="suspended")

    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", "owner-pw-1")
    client.force_login(owner)
    response = client.post(
        "/admin/commissions/promoter/",
        {"action": "approve", "_selected_action": [newbie.pk, suspended.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 promoter(s) approved." in [str(m) for m in response.context["messages"]]
    newbie.refresh_from_db()
    suspended.refresh_from_db()
    assert (newbie.status, suspended.status) == ("active", "suspended")

    # Neither joining nor being approved posted anything: no fee, no reward for recruiting.
    assert not LedgerEntry.objects.exists()
    nothing = Balances(pending=0, available=0, requested=0, paid=0)
    assert promoter_balances(promoter_id=upline.pk) == nothing
    assert promoter_balances(promoter_id=newbie.pk) == nothing
    # Only a sale pays, both levels.
    assert entries(sell(ref=newbie.code)) == {(1, newbie.code): 1000, (2, "UP"): 300}
