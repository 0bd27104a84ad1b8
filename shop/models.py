"""The catalog (categories, products), the shop-wide settings the owner edits in the admin, and
the audit log every app writes to (``shop.audit``): it lives in this low layer so all can."""

from __future__ import annotations

from typing import Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connection, models
from django.db.models import Q
from django.utils import translation

# A key's slot in its order is a small integer; one order never needs more keys than this.
MAX_KEYS_PER_ORDER = 1000

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as USD or CNY.")

# The channels a buyer's messages may take, in the owner's words (``orders.outbox`` sends them;
# the names are kept here because the owner's settings below are checked against them).
MESSAGE_CHANNELS = ("email", "sms", "inbox", "callback")
DEFAULT_MESSAGE_CHANNELS = "email,sms,inbox"


def parse_message_channels(value: str) -> list[str]:
    """``"email, sms,inbox"`` as ``["email", "sms", "inbox"]``: order kept, repeats dropped."""
    seen: list[str] = []
    for name in (part.strip().lower() for part in (value or "").split(",")):
        if name and name not in seen:
            seen.append(name)
    return seen


def validate_message_channels(value: str) -> None:
    unknown = [name for name in parse_message_channels(value) if name not in MESSAGE_CHANNELS]
    if unknown:
        raise ValidationError(
            f"Unknown channel(s): {', '.join(unknown)}. Use {', '.join(MESSAGE_CHANNELS)}."
        )


class Category(models.Model):
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """Something sold as card keys. Prices are integer minor units of ``currency``."""

    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", null=True, blank=True
    )
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    name_zh = models.CharField(
        "name (Simplified Chinese)",
        max_length=120,
        blank=True,
        help_text="Shown to buyers reading Chinese; empty: they see the name above.",
    )
    description_zh = models.TextField(
        "description (Simplified Chinese)",
        blank=True,
        help_text="Shown to buyers reading Chinese; empty: they see the description above.",
    )
    price = models.BigIntegerField(
        validators=[MinValueValidator(1)], help_text="In minor units: 990 means 9.90."
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    on_sale = models.BooleanField(default=True)
    max_per_order = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_KEYS_PER_ORDER)],
        help_text="Most keys one order may buy.",
    )
    low_stock_threshold = models.PositiveIntegerField(default=5)
    sort_order = models.IntegerField(default=0)
    usage_instructions = models.TextField(
        blank=True,
        help_text="How to use the key: sent with it by email and shown in the buyer's inbox.",
    )
    message_channels = models.CharField(
        max_length=80,
        blank=True,
        validators=[validate_message_channels],
        help_text=(
            "Where the buyer hears about the delivery, tried in order until one works, "
            f"comma-separated from {', '.join(MESSAGE_CHANNELS)}. Blank: the shop's default. "
            "The order page always shows the keys."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
            models.CheckConstraint(
                condition=Q(max_per_order__gte=1, max_per_order__lte=MAX_KEYS_PER_ORDER),
                name="product_max_per_order_range",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="product_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def local_name(self) -> str:
        """The name in the active language: the Chinese one if set and Chinese is served."""
        return (self.name_zh if _chinese_served() else "") or self.name

    @property
    def local_description(self) -> str:
        return (self.description_zh if _chinese_served() else "") or self.description


def _chinese_served() -> bool:
    return (translation.get_language() or "").startswith("zh")


class SingletonModel(models.Model):
    """A one-row settings table. Each subclass also declares a ``CheckConstraint(id=1)`` so
    the database, not just ``save()``, refuses a second row."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> Self:
        # Read on every checkout and delivery: a plain SELECT, created on first use only.
        table = connection.ops.quote_name(cls._meta.db_table)
        found = next(iter(cls.objects.raw(f"SELECT * FROM {table} WHERE id = 1")), None)  # noqa: S608
        if found is not None:
            return found
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class ShopSettings(SingletonModel):
    """One row of owner-tunable settings; ``ShopSettings.load()`` creates it on first use."""

    shop_name = models.CharField(max_length=80, default="Kami")
    owner_email = models.EmailField(blank=True, help_text="Where alerts go.")
    hold_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1)],
        help_text="How long an unpaid order holds its keys.",
    )
    max_unpaid_per_email = models.PositiveIntegerField(
        default=2, help_text="Most unpaid orders one buyer email may hold at once."
    )
    max_unpaid_per_ip = models.PositiveIntegerField(
        default=2, help_text="Most unpaid orders one client IP may hold at once."
    )
    priority_amount = models.BigIntegerField(
        default=0,
        validators=[MinValueValidator(0)],
        help_text=(
            "Orders of at least this amount (minor units of the order's currency: 5000 means "
            "50.00) are delivered in the priority lane, ahead of a flood of small ones; "
            "returning buyers always are. 0 turns the amount rule off."
        ),
    )
    message_channels = models.CharField(
        max_length=80,
        default=DEFAULT_MESSAGE_CHANNELS,
        validators=[validate_message_channels],
        help_text=(
            "The default fallback chain for buyers' messages, tried in order until one works "
            f"(comma-separated from {', '.join(MESSAGE_CHANNELS)}); a product may set its own. "
            "SMS is skipped for buyers who gave no phone number."
        ),
    )
    callback_url = models.URLField(
        blank=True,
        max_length=500,
        help_text=(
            "Your system's HTTPS endpoint: every delivered order is POSTed to it as signed "
            "JSON (Kami-Signature header), retried until it answers 2xx."
        ),
    )
    callback_secret = models.CharField(
        max_length=128,
        blank=True,
        help_text="The HMAC-SHA256 key the callback is signed with; at least 32 characters.",
    )
    max_unpaid_per_network = models.PositiveIntegerField(
        default=4,
        help_text=(
            "Most unpaid orders one network may hold at once: an IPv4 /24 or an IPv6 /64 "
            "(one subscriber's range, where a new address costs nothing)."
        ),
    )
    hold_share_percent = models.PositiveSmallIntegerField(
        default=50,
        validators=[MaxValueValidator(100)],
        help_text=(
            "Unpaid orders together may hold at most this share of a product's keys. Beyond "
            "it checkout still takes the order, without a hold: whoever pays first gets the "
            "keys. 0 holds nothing, 100 lets holds take every key."
        ),
    )
    hold_min_keys = models.PositiveSmallIntegerField(
        default=1,
        help_text=(
            "However few keys are left, unpaid orders may together hold at least this many "
            "(one ordinary buyer's order), so the last keys can still be held while paying."
        ),
    )
    backorder_refund_after_hours = models.PositiveIntegerField(
        default=24,
        help_text=(
            "A paid order waiting for keys (backordered) is refunded automatically through "
            "the payment provider after this many hours without a restock. 0 never refunds."
        ),
    )

    class Meta:
        verbose_name = "shop settings"
        verbose_name_plural = "shop settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="shopsettings_singleton"),
            models.CheckConstraint(
                condition=Q(hold_share_percent__lte=100), name="shopsettings_hold_share_percent"
            ),
        ]

    def __str__(self) -> str:
        return "Shop settings"

    def clean(self) -> None:
        if self.callback_url and len(self.callback_secret) < 32:
            raise ValidationError(
                {"callback_secret": "A callback needs a secret of at least 32 characters."}
            )


class AuditEntry(models.Model):
    """One sensitive change, kept for good (``shop.audit`` writes them, nothing else).

    Append-only: ``save`` and ``delete`` refuse to rewrite a row, and on PostgreSQL a trigger
    refuses UPDATE and DELETE (its migration), so not even a raw query can edit history. The
    actor is kept by id and by name: the reference carries no database constraint, so deleting
    a user neither cascades into nor has to update the record of what they did.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        DELETE = "delete", "Deleted"
        REVEAL = "reveal", "Keys revealed"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(
        max_length=150, help_text="The username then, or 'system' for migrations and tasks."
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"field": [before, after]}; secrets appear only as "[secret]".',
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_type} {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The audit log is append-only.")
