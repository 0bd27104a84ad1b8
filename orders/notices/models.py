"""The owner's notifications: where they go, what is waiting, what was batched into a message.

``OwnerNotifier``: one destination the owner set up (an email address, a Telegram chat, a
WeCom / DingTalk / Feishu group robot, a Bark device, any URL) and the events it is opted in
to. ``PendingNotice``: an event waiting to be batched, written in the transaction that caused
it and deleted in the one that batches it. ``NoticeBatch`` and ``NoticeItem``: the events one
destination gets in one message, and the outbox message that carries it. See
``orders.notices`` for how they move.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NoticeKind(models.TextChoices):
    """What the owner can hear about. Each notifier opts in to some of them."""

    NEW_ORDER = "new_order", _("New orders (paid)")
    DELIVERY_FAILED = "delivery_failed", _("Buyers not told of their keys on any channel")
    BACKORDER = "backorder", _("Backordered (paid, no keys free)")
    HOLD = "hold", _("On hold (needs your review)")


class NotifierKind(models.TextChoices):
    """A destination's kind is the outbox channel its messages take (``MessageChannel``)."""

    EMAIL = "email", "Email"
    TELEGRAM = "telegram", "Telegram bot"
    WECOM = "wecom", "WeCom group robot (企业微信)"
    DINGTALK = "dingtalk", "DingTalk group robot (钉钉)"
    FEISHU = "feishu", "Feishu / Lark group robot (飞书)"
    BARK = "bark", "Bark (iOS push)"
    WEBHOOK = "webhook", "Any URL (signed JSON)"


TELEGRAM_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
TELEGRAM_TOKEN = re.compile(r"\d{3,15}:[A-Za-z0-9_-]{20,100}")


class OwnerNotifier(models.Model):
    """One place the owner hears about the shop. Nothing is sent until the owner adds one,
    ticks its events and leaves it enabled: every notification is opt-in."""

    name = models.CharField(max_length=80, help_text="For you: e.g. “Night shift group”.")
    kind = models.CharField(max_length=16, choices=NotifierKind.choices)
    target = models.CharField(
        max_length=500,
        help_text=(
            "Email: the address. Telegram: the chat id (e.g. -1001234567890 or @channel). "
            "WeCom, DingTalk, Feishu: the robot's webhook URL. Bark: https://api.day.app/"
            "<device key> or your own server's URL with the key. Any URL: the endpoint."
        ),
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text=(
            "Telegram: the bot token (from @BotFather). DingTalk / Feishu: the robot's "
            "signing secret (加签), if you turned signing on. Any URL: the HMAC key its "
            "requests are signed with (at least 32 characters). Never shown again."
        ),
    )
    events = models.JSONField(
        default=list, blank=True, help_text="The kinds of event this destination is opted in to."
    )
    batch_seconds = models.PositiveIntegerField(
        default=60,
        help_text=(
            "Events within this many seconds of the first one are sent as one message, so a "
            "flood of orders is one notification. 0: as soon as the next pass (seconds)."
        ),
    )
    enabled = models.BooleanField(default=True)
    latest_message_key = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        help_text="The outbox key of its newest message (a batch's or a test's): its state.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "owner notification"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=NotifierKind.values), name="ownernotifier_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(batch_seconds__lte=3600), name="ownernotifier_batch_at_most_an_hour"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def wants(self, kind: str) -> bool:
        return kind in (self.events or [])

    def clean(self) -> None:
        """What each service needs, checked before it is saved, with words the owner can act
        on: a destination that cannot work is refused here rather than failing at 2 a.m."""
        errors: dict[str, str] = {}
        unknown = [kind for kind in self.events or [] if kind not in NoticeKind.values]
        if unknown:
            errors["events"] = f"Unknown event(s): {', '.join(map(str, unknown))}."
        target = (self.target or "").strip()
        self.target = target
        if self.kind == NotifierKind.EMAIL:
            try:
                validate_email(target)
            except ValidationError:
                errors["target"] = "Enter the email address to send to."
        elif self.kind == NotifierKind.TELEGRAM:
            if not TELEGRAM_CHAT.fullmatch(target):
                errors["target"] = "A Telegram chat id (e.g. -1001234567890) or @channelname."
            if not TELEGRAM_TOKEN.fullmatch(self.secret or ""):
                errors["secret"] = "The bot token from @BotFather (digits, a colon, letters)."  # noqa: S105
        else:
            parts = urlsplit(target)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                errors["target"] = "The full URL, starting with https://."
            if self.kind == NotifierKind.WEBHOOK and len(self.secret or "") < 32:
                errors["secret"] = "A URL is signed with a secret of 32 characters or more."  # noqa: S105
        if errors:
            raise ValidationError(errors)


class PendingNotice(models.Model):
    """An event the owner may want to hear about, not batched yet. A queue: written in the
    causing transaction (a few bytes, no lock on anything shared), deleted when batched."""

    kind = models.CharField(max_length=24, choices=NoticeKind.choices)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=200, blank=True, help_text="No buyer data, no secrets.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} (order {self.order_id})"


class NoticeBatch(models.Model):
    """The events one destination gets in one message. Open while it collects (at most one
    open batch per destination), closed when its message is written to the outbox."""

    class Status(models.TextChoices):
        OPEN = "open", "Collecting"
        CLOSED = "closed", "Handed to the outbox"

    notifier = models.ForeignKey(OwnerNotifier, on_delete=models.CASCADE, related_name="batches")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="When it closes: its first event + the window.")
    closed_at = models.DateTimeField(null=True, blank=True)
    message_key = models.CharField(
        max_length=200, blank=True, help_text="Its outbox message's idempotency key, once closed."
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name_plural = "notice batches"
        constraints = [
            models.UniqueConstraint(
                fields=["notifier"],
                condition=Q(status="open"),
                name="noticebatch_one_open_per_notifier",
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], name="noticebatch_due_idx", condition=Q(status="open"))
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} for {self.notifier_id} ({self.status})"


class NoticeItem(models.Model):
    """One event in one batch. An event reaches each destination opted in to it once: a
    unique (destination, pending notice) pair, so no replay or race can batch it twice."""

    batch = models.ForeignKey(NoticeBatch, on_delete=models.CASCADE, related_name="items")
    notifier = models.ForeignKey(OwnerNotifier, on_delete=models.CASCADE, related_name="+")
    notice_id = models.BigIntegerField(help_text="The pending notice it came from.")
    kind = models.CharField(max_length=24, choices=NoticeKind.choices)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notifier", "notice_id"], name="noticeitem_once_per_notifier"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} in batch {self.batch_id}"
