"""Tickets: the buyer reports a problem with an order, the shop answers.

Opening a ticket needs what a lookup needs (the browser that holds the order, or the email /
query password checked by ``orders.access.order_lookup``, which counts a miss toward the lookup
limit). Open tickets are capped per order and per client IP, so the form cannot flood the
owner. Messages are plain text, bounded and stripped of control characters; every page escapes
them. The shop's reply is a row of the thread and a message to the buyer through the outbox,
down the order's channel chain, in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from core.errors import InvalidInput, KamiError
from orders.events import event_ticket_opened, event_ticket_replied
from orders.locks import lock_order
from orders.models import Order
from orders.outbox.models import MessagePurpose, OutboxMessage
from orders.outbox.services import buyer_draft, messages_enqueue, messaging_plan
from orders.support.models import (
    MESSAGE_MAX,
    ReplyAuthor,
    Ticket,
    TicketKind,
    TicketReply,
    TicketStatus,
)

# Open (not closed) tickets allowed at once: per order, and per client IP over all orders.
OPEN_PER_ORDER = 3
OPEN_PER_IP = 5
ACTIVE = (TicketStatus.OPEN, TicketStatus.ANSWERED)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TooManyTickets(KamiError):
    status = 429
    code = "too_many_tickets"


def clean_message(text: str) -> str:
    """The text as stored: control characters gone, line ends normalised, bounded."""
    text = _CONTROL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise InvalidInput(_("Please describe the problem."))
    if len(text) > MESSAGE_MAX:
        raise InvalidInput(
            _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX}
        )
    return text


def _new_ticket_no() -> str:
    return "T" + secrets.token_hex(5).upper()


def ticket_open(*, order: Order, kind: str, message: str, client_ip: str | None) -> Ticket:
    """Open a ticket on ``order`` (access already proven by the caller)."""
    if kind not in TicketKind.values:
        raise InvalidInput(_("Choose what the problem is: key missing, key invalid or other."))
    text = clean_message(message)
    with transaction.atomic():
        locked = lock_order(order.pk)  # two forms at once count against one cap
        if locked is None:
            raise InvalidInput(_("No such order."))
        if Ticket.objects.filter(order=locked, status__in=ACTIVE).count() >= OPEN_PER_ORDER:
            raise TooManyTickets(
                _("This order already has open tickets: the shop will answer them first.")
            )
        if (
            client_ip
            and Ticket.objects.filter(client_ip=client_ip, status__in=ACTIVE).count() >= OPEN_PER_IP
        ):
            raise TooManyTickets(_("Too many open tickets from your network: try again later."))
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    ticket = Ticket.objects.create(
                        ticket_no=_new_ticket_no(), order=locked, kind=kind, client_ip=client_ip
                    )
                break
            except IntegrityError:  # a ticket number drawn twice: draw again
                continue
        else:  # pragma: no cover - 40 random bits colliding three times
            raise RuntimeError("no free ticket number")
        TicketReply.objects.create(ticket=ticket, author=ReplyAuthor.BUYER, message=text)
        event_ticket_opened(locked, ticket_no=ticket.ticket_no, kind=kind)
    return ticket


def buyer_message_enqueue(*, order: Order, purpose: str, payload: dict[str, Any]) -> str:
    """A message to the order's buyer down the order's chain, as a new generation of
    ``purpose`` on this order (one per reply or replacement). Caller holds the order lock."""
    latest = OutboxMessage.objects.filter(order=order, purpose=purpose).aggregate(
        latest=Max("generation")
    )["latest"]
    plan = messaging_plan(order.product_id)
    draft = buyer_draft(
        order=order,
        chain=plan.chain,
        callback_url=plan.callback_url,
        purpose=purpose,
        generation=0 if latest is None else latest + 1,
    )
    return messages_enqueue([replace(draft, payload=payload)])[0]


@dataclass(frozen=True)
class ReplyOutcome:
    reply: TicketReply | None
    message: str


def ticket_reply(*, ticket_id: int, message: str, actor: Any) -> ReplyOutcome:
    """The shop's answer: a reply in the thread, the ticket ``answered``, and the buyer told
    through the outbox — one transaction."""
    text = clean_message(message)
    with transaction.atomic():
        ticket = Ticket.objects.select_related("order").filter(pk=ticket_id).first()
        if ticket is None:
            return ReplyOutcome(None, "No such ticket.")
        order = lock_order(ticket.order_id)
        assert order is not None
        reply = TicketReply.objects.create(
            ticket=ticket,
            author=ReplyAuthor.SHOP,
            actor=actor if getattr(actor, "pk", None) else None,
            message=text,
        )
        Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.ANSWERED)
        buyer_message_enqueue(
            order=order,
            purpose=MessagePurpose.TICKET_REPLY,
            payload={"ticket": ticket.ticket_no, "reply": reply.pk},
        )
        event_ticket_replied(order, ticket_no=ticket.ticket_no, actor=actor)
    return ReplyOutcome(reply, f"Reply to {ticket.ticket_no} sent to the buyer.")


def ticket_close(*, ticket_id: int) -> None:
    Ticket.objects.filter(pk=ticket_id).update(status=TicketStatus.CLOSED)


def tickets_for_order(order: Order) -> list[dict[str, Any]]:
    """The order's tickets with their threads, newest first. Callers check access first."""
    tickets = (
        Ticket.objects.filter(order=order)
        .prefetch_related("replies")
        .order_by("-created_at", "-pk")
    )
    return [
        {
            "ticket_no": t.ticket_no,
            "kind": t.kind,
            "kind_label": t.get_kind_display(),
            "status": t.status,
            "created_at": t.created_at,
            "replies": [
                {"from": r.author, "message": r.message, "created_at": r.created_at}
                for r in t.replies.all()
            ],
        }
        for t in tickets
    ]
