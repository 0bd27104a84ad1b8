"""The outbox's tables: every outgoing message, every attempt to send it, the buyer's inbox.

A message row is written in the transaction that causes it (the delivery, the alert) and
holds only references and non-secret text: a delivery email's keys are decrypted from the
order when it is sent, never copied here. See ``orders.outbox`` for how rows are sent.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class MessageChannel(models.TextChoices):
    """How a message travels. The names are the owner's vocabulary in the product and shop
    settings (``shop.models.MESSAGE_CHANNELS``)."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    INBOX = "inbox", "Site inbox"
    CALLBACK = "callback", "Owner's HTTP callback"
    # The owner's notifications only (``orders.notices``): never in a buyer's chain.
    TELEGRAM = "telegram", "Telegram bot"
    WECOM = "wecom", "WeCom group robot"
    DINGTALK = "dingtalk", "DingTalk group robot"
    FEISHU = "feishu", "Feishu / Lark group robot"
    BARK = "bark", "Bark push"
    WEBHOOK = "webhook", "Owner's notification URL"


class MessagePurpose(models.TextChoices):
    """Why a message is sent: decides what it says on each channel (``orders.outbox.content``)."""

    DELIVERY = "delivery", "Keys delivered (to the buyer)"
    ORDER_CALLBACK = "order_callback", "Order delivered (to the owner's system)"
    OWNER_ALERT = "owner_alert", "Alert (to the owner)"
    WEEKLY_SUMMARY = "weekly_summary", "Weekly summary (to the owner)"
    TICKET_REPLY = "ticket_reply", "The shop answered a ticket (to the buyer)"
    KEY_REPLACED = "key_replaced", "A key was replaced (to the buyer)"
    MY_ORDERS_LINK = "my_orders_link", "A link to the buyer's orders (to an email)"
    RESTOCK_NOTICE = "restock_notice", "A product is back (to a subscriber)"
    # After the sale (orders.followups): the same values as FollowUpPurpose
    KEY_GUIDE = "key_guide", "Where to find your key (to the buyer)"
    HOW_TO = "how_to", "How to use it (to the buyer)"
    CHECK_IN = "check_in", "Check-in (to the buyer)"
    RECOMMENDATION = "recommendation", "Recommendation (to the buyer)"
    SURVEY = "survey", "Satisfaction survey (to the buyer)"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Claimed by a dispatcher"
    SENT = "sent", "Sent"
    FAILED = "failed", "Gave up on this channel"
    SKIPPED = "skipped", "Not sent: no longer wanted"


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "In progress"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed, will retry"
    GAVE_UP = "gave_up", "Failed for good"
    UNKNOWN = "unknown", "Outcome unknown (the dispatcher stopped)"
    SKIPPED = "skipped", "Not sent: no longer wanted"


OPEN_STATUSES = (MessageStatus.PENDING, MessageStatus.SENDING)


class OutboxMessage(models.Model):
    """One message on one channel. When a channel gives up, the next one of the chain
    (``fallback``) becomes a row of its own, so each channel has its own attempts and key."""

    purpose = models.CharField(max_length=32, choices=MessagePurpose.choices)
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
    )
    generation = models.PositiveSmallIntegerField(
        default=0, help_text="0 for the first sending, n for the owner's n-th resend."
    )
    channel = models.CharField(max_length=16, choices=MessageChannel.choices)
    fallback = models.JSONField(
        default=list, blank=True, help_text="The channels still to try if this one gives up."
    )
    recipient = models.CharField(
        max_length=500, help_text="An email address, a phone number, a URL or the order number."
    )
    payload = models.JSONField(
        default=dict,
        blank=True,
        help_text="References and non-secret text only; keys are read from the order when sent.",
    )
    idempotency_key = models.CharField(
        max_length=200,
        unique=True,
        help_text="Also the email's Message-ID and the callback's Idempotency-Key header.",
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        help_text="Pending: when it is due. Sending: when the claim lapses and it is in doubt."
    )
    last_error = models.TextField(blank=True)
    provider_ref = models.CharField(
        max_length=255, blank=True, help_text="The provider's id for the sent message, if any."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "purpose", "channel", "generation"],
                condition=Q(order__isnull=False),
                name="outboxmessage_one_per_order_purpose_channel",
            ),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="outboxmessage_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(status=MessageStatus.SENT),
                name="outboxmessage_sent_at_only_if_sent",
            ),
        ]
        indexes = [
            # The dispatcher's and the sweep's one query: open rows by due time.
            models.Index(
                fields=["next_attempt_at"],
                name="outboxmessage_due_idx",
                condition=Q(status__in=OPEN_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} by {self.channel} ({self.status})"


class MessageAttempt(models.Model):
    """Each try to send a message: written when the dispatcher claims it (before anything
    leaves the process), completed with the outcome after. An attempt still ``sending``
    after its claim lapsed is marked ``unknown``: the message may or may not have left."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="message_attempts",
        help_text="The message's order, so the order page lists every attempt at once.",
    )
    number = models.PositiveIntegerField()
    channel = models.CharField(max_length=16, choices=MessageChannel.choices)
    outcome = models.CharField(
        max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING
    )
    error = models.TextField(blank=True)
    provider_ref = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=120, blank=True, help_text="host:pid that sent it.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "number"], name="messageattempt_one_per_number"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of message {self.message_id}: {self.outcome}"


class InboxMessage(models.Model):
    """A message in the buyer's site inbox, shown on the order page and in the lookup. Written
    in the transaction that records its outbox message as sent: exactly once. No keys here
    either (they are shown beside it, from the order)."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="inbox")
    message = models.OneToOneField(
        OutboxMessage, on_delete=models.PROTECT, related_name="inbox_entry"
    )
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.subject
