"""Showing an order's sold keys in the admin: an explicit, recorded act of the owner.

Keys are cash. The order page never decrypts them; the owner asks for them with a reason, and
``order_keys_reveal`` writes the ``KeyReveal`` row and its audit-log entry in the same
transaction that reads the keys, so there is no way to see a key without leaving a record of
who, when, from where and why. Whether the person may ask at all is the view's question (the
owner role, ``core.roles``); this function records whoever it is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from cardpool.selectors import keys_for_order
from core.errors import InvalidInput
from orders.models import KeyReveal, Order
from shop.audit import audit_record
from shop.models import AuditEntry

REASON_MAX = 300
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevealedKeys:
    reveal: KeyReveal
    keys: list[str]


def order_keys_reveal(
    *, order: Order, actor: Any, reason: str, client_ip: str | None
) -> RevealedKeys:
    """Record the reveal, then decrypt. Raises ``InvalidInput`` without a reason."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput(
            "Say why you need to see these keys: the reason is kept with the record."
        )
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"Keep the reason under {REASON_MAX} characters.")
    with transaction.atomic():
        keys = keys_for_order(order)
        reveal = KeyReveal.objects.create(
            order=order,
            actor=actor,
            actor_name=actor.get_username(),
            reason=reason,
            client_ip=client_ip,
            key_count=len(keys),
        )
        audit_record(
            action=AuditEntry.Action.REVEAL,
            obj=order,
            changes={"keys": [None, f"{len(keys)} shown"]},
            note=reason,
            actor=actor,
        )
    logger.info("keys of order %s revealed to %s (reveal %s)", order.order_no, actor, reveal.pk)
    return RevealedKeys(reveal=reveal, keys=keys)
