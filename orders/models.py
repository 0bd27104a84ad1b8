"""Orders, their event log, deliveries and the payment-event inbox."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending payment")
    PAID = "paid", _("Paid")
    DELIVERED = "delivered", _("Delivered")
    ON_HOLD = "on_hold", _("On hold")
    BACKORDERED = "backordered", _("Backordered")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUNDED = "refunded", _("Refunded")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")


class OrderEventKind(models.TextChoices):
    """Every kind of row in an order's history: a fixed list. The status kinds are named after
    the status they enter; the rest are notes that leave the status alone. Written only by
    ``orders.transitions`` (status steps) and the constructors of ``orders.events`` (notes),
    which is where to import it from; it lives here because ``OrderEvent.kind`` needs it."""

    # Status changes
    CREATED = "created", "Created"
    PAID = "paid", "Paid"
    DELIVERED = "delivered", "Delivered"
    BACKORDERED = "backordered", "Backordered: no keys free"
    PAYMENT_MISMATCH = "payment_mismatch", "Held: paid amount or currency differs"
    RISK_HOLD = "risk_hold", "Held for review by risk control"
    REFUND_REQUESTED = "refund_requested", "Full refund asked of the provider"
    BACKORDER_REFUND = "backorder_refund", "Refund asked automatically: no keys came in time"
    REFUND_FAILED = "refund_failed", "Refund refused: back to review"
    REFUNDED = "refunded", "Refunded"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    # Notes
    PAYMENT_NOT_SETTLED = "payment_not_settled", "Checkout completed, payment not settled"
    DUPLICATE_PAYMENT_EVENT = "duplicate_payment_event", "Payment event repeated"
    SECOND_PAYMENT = "second_payment", "Paid a second time"
    REFUND_ASKED = "refund_asked", "Refund asked"
    PARTIAL_REFUND = "partial_refund", "Partly refunded"
    DISPUTE_OPENED = "dispute_opened", "Dispute opened"
    COMMISSION_SKIPPED = "commission_skipped", "No commissions posted"
    RISK_HOLD_DECIDED = "risk_hold_decided", "Risk control: hold at payment"
    RISK_FLAG = "risk_flag", "Risk control: flagged"
    # The owner's review queue (riskrules' ``ReviewAction.Action``, prefixed)
    REVIEW_APPROVE = "review_approve", "Approved (delivered)"
    REVIEW_REJECT_REFUND = "review_reject_refund", "Rejected and refunded"
    REVIEW_BLOCK_EMAIL = "review_block_email", "Buyer email blocklisted"
    REVIEW_BLOCK_IP = "review_block_ip", "Buyer IP blocklisted"
    # Support
    KEYS_RESENT = "keys_resent", "Keys resent to the buyer's email"
    TICKET_OPENED = "ticket_opened", "The buyer opened a ticket"
    TICKET_REPLIED = "ticket_replied", "The shop replied to a ticket"
    KEY_REPLACED = "key_replaced", "A key was voided and replaced from the pool"
    MESSAGE_FAILED = "message_failed", "The buyer's message failed on every channel"


class Order(models.Model):
    """A buyer's order. Amounts are integer minor units snapshotted at checkout."""

    order_no = models.CharField(max_length=32, unique=True)
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField()
    unit_price = models.BigIntegerField()
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    email = models.EmailField()
    phone = models.CharField(
        max_length=16, blank=True, help_text="E.164 (+15551234567), optional: for SMS messages."
    )
    buyer_identity = models.CharField(
        max_length=254,
        blank=True,
        help_text="The email with case, +tags and Gmail dots folded: one person, one identity.",
    )
    query_password_hash = models.CharField(max_length=128, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    client_network = models.CharField(
        max_length=43,
        blank=True,
        help_text="The client IP's network (IPv4 /24, IPv6 /64), for the per-network limits.",
    )
    user_agent = models.CharField(max_length=400, blank=True)
    ref_code = models.CharField(max_length=32, blank=True)
    buyer_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
        help_text="The logged-in account that checked out, if any (self-referral checks).",
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    hold_expires_at = models.DateTimeField(
        help_text=(
            "The unpaid window: until then the order may be paid, and, if it holds keys, "
            "its quantity is held out of stock for this buyer."
        )
    )
    holds_keys = models.BooleanField(
        default=True,
        help_text=(
            "Checkout reserved its keys until the window closes. Without a hold (unpaid orders "
            "already held the product's share), keys go to whoever pays first."
        ),
    )
    language = models.CharField(
        max_length=16,
        default="en",
        help_text="The buyer's language at checkout (en, zh-hans): the order's emails use it.",
    )
    payment_provider = models.CharField(max_length=16, default="sandbox")
    checkout_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    paid_amount = models.BigIntegerField(null=True, blank=True)
    paid_currency = models.CharField(max_length=3, blank=True)
    refunded_amount = models.BigIntegerField(default=0)
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "The order's place in line for keys: its checkout if it paid inside its hold, "
            "else its payment (or the owner's approval after a review)."
        ),
    )
    backordered_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it last began waiting for keys: the automatic refund counts from here.",
    )
    disputed_at = models.DateTimeField(null=True, blank=True)
    priority = models.BooleanField(
        default=False,
        help_text=(
            "Delivered in the priority lane: its amount reached the shop's priority amount, "
            "or its buyer had a delivered order before (orders.priority)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the buyer first opened the order page after delivery (the key guide).",
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("resend_order_keys", "Can resend an order's keys to its buyer (without seeing them)")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(amount=F("unit_price") * F("quantity")), name="order_amount_matches"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0), name="order_refund_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(delivered_at__isnull=True) | Q(paid_at__isnull=False),
                name="order_delivered_only_if_paid",
            ),
        ]
        indexes = [
            # Stock claims: active holds and backorders per product.
            models.Index(fields=["product", "status", "hold_expires_at"], name="order_claims_idx"),
            models.Index(fields=["email", "status"], name="order_email_status_idx"),
            models.Index(
                fields=["buyer_identity", "created_at"], name="order_identity_created_idx"
            ),
            models.Index(fields=["client_ip", "status"], name="order_ip_status_idx"),
            models.Index(fields=["client_network", "status"], name="order_network_status_idx"),
            models.Index(
                fields=["backordered_at"],
                name="order_backordered_idx",
                condition=Q(status="backordered"),
            ),
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderEvent(models.Model):
    """Append-only history of an order: every status change and notable fact, with its actor."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40, choices=OrderEventKind.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # An order is refunded automatically for waiting too long at most once, whatever
            # runs the sweep and however often (``orders.backorder_refunds``).
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind="backorder_refund"),
                name="orderevent_one_backorder_refund",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.kind}"


class Delivery(models.Model):
    """The one delivery of an order: unique per order, so a second one cannot be recorded."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="delivery")
    key_count = models.PositiveIntegerField()
    payment_event = models.ForeignKey(
        "orders.PaymentEvent", on_delete=models.SET_NULL, null=True, blank=True
    )
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the payment event's arrival to the key's commit."
    )
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"Delivery of {self.order_id}"


class PaymentEvent(models.Model):
    """The webhook inbox. "Seen" (a row exists) and "processed" are separate facts.

    The raw body and the headers are kept byte for byte, as dj-stripe does: the signature
    covers those bytes, so a stored event can be verified again before it is re-processed;
    ``payload`` is the parsed copy the handlers read.
    """

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=80)
    payload = models.JSONField()
    body = models.BinaryField(default=b"", help_text="The request body exactly as signed.")
    headers = models.JSONField(
        default=dict, blank=True, help_text="The request headers that came with it."
    )
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="payment_events"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(
        blank=True, help_text="The full traceback of the last failed attempt; empty once processed."
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="After a failed sweep: no sweep takes the event again before this.",
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="paymentevent_unique_per_provider"
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="paymentevent_unprocessed_idx",
                condition=Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} ({self.type})"


class KeyReveal(models.Model):
    """The owner looked at an order's sold keys in the admin: who, when, from where and why.

    The only way keys reach an admin page (``orders.reveals``). Append-only: nothing in the
    code updates or deletes a reveal, and on PostgreSQL a trigger refuses to (its migration).
    The actor reference carries no database constraint, so the record outlives the account.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="key_reveals")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150)
    reason = models.CharField(max_length=300)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    key_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="keyreveal_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Keys of {self.order} shown to {self.actor_name}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Key reveals are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Key reveals are append-only.")


# The follow-ups' tables too (messages after the sale, orders.followups).
from orders.followups.models import (  # noqa: E402
    FollowUp,
    MessageTemplate,
    ProductFollowUps,
    SurveyResponse,
    Unsubscribe,
)
from orders.notices.models import (  # noqa: E402
    NoticeBatch,
    NoticeItem,
    NoticeKind,
    NotifierKind,
    OwnerNotifier,
    PendingNotice,
)

# The outbox's tables are orders' too (messages about orders); they live beside their code.
from orders.outbox.models import (  # noqa: E402
    AttemptOutcome,
    InboxMessage,
    MessageAttempt,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    OutboxMessage,
)
from orders.support.models import (  # noqa: E402
    KeyReplacement,
    RestockSubscription,
    Ticket,
    TicketReply,
)

__all__ = [
    "AttemptOutcome",
    "Delivery",
    "FollowUp",
    "InboxMessage",
    "KeyReplacement",
    "KeyReveal",
    "MessageAttempt",
    "MessageChannel",
    "MessagePurpose",
    "MessageStatus",
    "MessageTemplate",
    "NoticeBatch",
    "NoticeItem",
    "NoticeKind",
    "NotifierKind",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderStatus",
    "OutboxMessage",
    "OwnerNotifier",
    "PaymentEvent",
    "PendingNotice",
    "ProductFollowUps",
    "RestockSubscription",
    "SurveyResponse",
    "Ticket",
    "TicketReply",
    "Unsubscribe",
]
