"""The tables of after-sales support: tickets and their replies, key replacements, restock
subscriptions. Imported by ``orders.models`` so Django finds them in the orders app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

MESSAGE_MAX = 2000


class TicketKind(models.TextChoices):
    KEY_MISSING = "key_missing", "Key missing"
    KEY_INVALID = "key_invalid", "Key does not work"
    OTHER = "other", "Other"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"


class Ticket(models.Model):
    """A buyer's report about one order. The buyer's own words are the first reply."""

    ticket_no = models.CharField(max_length=20, unique=True)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="tickets")
    kind = models.CharField(max_length=16, choices=TicketKind.choices)
    status = models.CharField(
        max_length=16, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("reply_ticket", "Can reply to a ticket and replace a key (without seeing it)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=TicketKind.values), name="ticket_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TicketStatus.values), name="ticket_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["order", "status"], name="ticket_order_status_idx"),
            models.Index(fields=["client_ip", "status"], name="ticket_ip_status_idx"),
        ]

    def __str__(self) -> str:
        return self.ticket_no


class ReplyAuthor(models.TextChoices):
    BUYER = "buyer", "Buyer"
    SHOP = "shop", "Shop"


class TicketReply(models.Model):
    """One message in a ticket's thread, plain text (escaped wherever it is shown)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="replies")
    author = models.CharField(max_length=8, choices=ReplyAuthor.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    message = models.TextField(max_length=MESSAGE_MAX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ticket replies"

    def __str__(self) -> str:
        return f"{self.author} on {self.ticket_id}"


class KeyReplacement(models.Model):
    """A sold key voided and another one sold into its slot of the order. ``old_key`` is
    unique: however many replaces race, a key is replaced once (the loser's INSERT fails and
    its transaction, new key and all, rolls back)."""

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="key_replacements"
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="replacements"
    )
    slot = models.PositiveSmallIntegerField()
    old_key = models.OneToOneField(
        "cardpool.CardKey", on_delete=models.PROTECT, related_name="replaced_by"
    )
    new_key = models.OneToOneField(
        "cardpool.CardKey", on_delete=models.PROTECT, related_name="replaces"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(old_key=models.F("new_key")), name="keyreplacement_new_key_differs"
            ),
        ]

    def __str__(self) -> str:
        return f"Slot {self.slot} of order {self.order_id} replaced"


class RestockSubscription(models.Model):
    """ "Notify me when it is back": one open subscription per product and email; closed
    (``notified_at``) in the transaction that writes its one notice."""

    product = models.ForeignKey(
        "shop.Product", on_delete=models.CASCADE, related_name="restock_subscriptions"
    )
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "email"],
                condition=Q(notified_at__isnull=True),
                name="restocksubscription_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} waits for {self.product_id}"
