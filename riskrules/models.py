"""Risk control: the owner's rules, blocklists, the decisions they made, reviews and alerts.

Rules are data, not code: the owner adds, tunes, reorders and switches them off in the admin,
and the next checkout evaluates whatever the table says (no cache to go stale). Decisions and
review actions are append-only records for the audit and the reports.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.identity import email_identity
from orders.models import Order
from shop.models import SingletonModel


class RuleAction(models.TextChoices):
    BLOCK = "block", "Block (refuse at checkout)"
    HOLD = "hold", "Hold (paid order waits for review)"
    FLAG = "flag", "Flag (deliver, mark for the owner)"


class RiskRule(models.Model):
    """One configurable check. Which fields matter depends on ``kind`` (see ``clean``)."""

    class Kind(models.TextChoices):
        VELOCITY = "velocity", "Velocity: orders or units per time window"
        AMOUNT_ANOMALY = "amount_anomaly", "Amount anomaly: K × the product's average order"
        QUANTITY_CAP = "quantity_cap", "Quantity cap: most keys in one order"
        BLOCKLIST = "blocklist", "Blocklist: emails, domains, IPs and ranges"
        DISPOSABLE_EMAIL = "disposable_email", "Disposable email domains (built-in list)"

    class Key(models.TextChoices):
        IP = "ip", "client IP"
        EMAIL = "email", "buyer email"
        IP_PRODUCT = "ip_product", "client IP + product"
        EMAIL_PRODUCT = "email_product", "buyer email + product"

    class Measure(models.TextChoices):
        ORDERS = "orders", "orders"
        UNITS = "units", "units (keys)"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    action = models.CharField(max_length=8, choices=RuleAction.choices, default=RuleAction.BLOCK)
    enabled = models.BooleanField(default=True)
    position = models.IntegerField(
        default=100, help_text="Evaluation order: lower runs first. The first block wins."
    )
    product = models.ForeignKey(
        "shop.Product",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="risk_rules",
        help_text="Only for this product; empty means every product.",
    )
    # Velocity
    key = models.CharField(max_length=16, choices=Key.choices, blank=True)
    measure = models.CharField(
        max_length=8, choices=Measure.choices, default=Measure.ORDERS, blank=True
    )
    limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Velocity: most orders/units per window. Quantity cap: most keys per order.",
    )
    window_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # Amount anomaly
    multiplier = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1"))],
        help_text="K: fires above K × the product's average order amount.",
    )
    baseline_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The trailing days whose paid orders make the average.",
    )
    min_baseline_orders = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The floor: no average (so no anomaly) until this many paid orders exist.",
    )
    floor_amount = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="And never fire at or below this amount (minor units; 0 for none).",
    )
    buyer_message = models.CharField(
        max_length=200,
        blank=True,
        help_text="Shown to a blocked buyer instead of the default. Name the limit, not the rule.",
    )
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        required: dict[str, list[str]] = {
            self.Kind.VELOCITY: ["key", "measure", "limit", "window_minutes"],
            self.Kind.AMOUNT_ANOMALY: ["multiplier", "baseline_days"],
            self.Kind.QUANTITY_CAP: ["limit"],
        }
        missing = {
            name: "Required for this kind of rule."
            for name in required.get(self.kind, [])
            if getattr(self, name) in (None, "")
        }
        if missing:
            raise ValidationError(missing)


class BlocklistEntry(models.Model):
    """A buyer the shop refuses (through the enabled blocklist rule's action)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        DOMAIN = "domain", "Email domain (and its subdomains)"
        NETWORK = "network", "IP address or CIDR range"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(
        max_length=254,
        help_text="buyer@example.com · example.com · 203.0.113.7 · 203.0.113.0/24",
    )
    note = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "blocklist entries"
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="blocklist_unique_value"),
        ]
        indexes = [models.Index(fields=["kind", "value"], name="blocklist_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"

    def clean(self) -> None:
        self.value = normalise_block_value(self.kind, self.value)


def normalise_block_value(kind: str, value: str) -> str:
    """The one canonical spelling per entry, so lookups are exact and duplicates collide."""
    value = (value or "").strip().lower()
    if kind == BlocklistEntry.Kind.NETWORK:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValidationError({"value": "Enter an IP address or a CIDR range."}) from None
    if kind == BlocklistEntry.Kind.DOMAIN:
        value = value.lstrip("@").rstrip(".")
        if "." not in value or "@" in value:
            raise ValidationError({"value": "Enter a domain such as example.com."})
        return value
    if kind == BlocklistEntry.Kind.EMAIL:
        if "@" not in value:
            raise ValidationError({"value": "Enter an email address."})
        return email_identity(value)
    return value


class RiskDecision(models.Model):
    """A rule that fired: what it saw (``inputs``) and what it did (``outcome``).

    Blocked checkouts have no order (their transaction rolled back); their record is written
    after that rollback (``hooks.checkout_refused``), so the refusal does not undo it. Rule and
    product references carry no database constraint: a decision is a record, and must outlive
    the rule or the product it names (a deleted rule leaves its name and kind on the row).
    """

    rule = models.ForeignKey(
        RiskRule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="decisions",
    )
    rule_name = models.CharField(max_length=120)
    rule_kind = models.CharField(max_length=20)
    outcome = models.CharField(max_length=8, choices=RuleAction.choices)
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, blank=True, related_name="risk_decisions"
    )
    product = models.ForeignKey(
        "shop.Product",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    email = models.CharField(max_length=254, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    message = models.CharField(max_length=300)
    inputs = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["outcome", "created_at"], name="riskdecision_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name}: {self.outcome}"


class ReviewOrder(Order):
    """The owner's review queue: paid orders on hold (an admin view of ``orders.Order``)."""

    class Meta:
        proxy = True
        verbose_name = "order to review"
        verbose_name_plural = "review queue"
        permissions = [("review_order", "Can approve, reject and refund held orders")]


class ReviewAction(models.Model):
    """Who did what to a held order, from the review queue."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved (delivered)"
        REJECT_REFUND = "reject_refund", "Rejected and refunded"
        BLOCK_EMAIL = "block_email", "Buyer email blocklisted"
        BLOCK_IP = "block_ip", "Buyer IP blocklisted"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="review_actions")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    result = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.action}"


class RiskSettings(SingletonModel):
    """Shop-wide knobs of risk control that are not per-rule (one row, ``load()``)."""

    checkout_rate_limit = models.PositiveIntegerField(
        default=20,
        help_text="Most checkout attempts per client IP per window (0 switches the limit off).",
    )
    checkout_rate_window_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)]
    )
    slow_delivery_seconds = models.PositiveIntegerField(
        default=10, help_text="Alert when payment → keys takes longer."
    )
    spike_holds_blocks = models.PositiveIntegerField(
        default=20, help_text="Alert when this many holds and blocks happen within the window."
    )
    spike_window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)]
    )
    forecast_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="Low-stock forecast: the pace of sales over this many past days.",
    )
    alert_email_interval_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1)],
        help_text="An open alert is emailed again at most this often, until acknowledged.",
    )

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="risksettings_singleton")]

    def __str__(self) -> str:
        return "Risk settings"

    @classmethod
    def current(cls) -> RiskSettings:
        """The settings for reading: the row, or the defaults if it was never saved. Never
        inserts, so a read on the checkout or payment path writes nothing and costs one indexed
        read."""
        return cls.objects.filter(pk=1).first() or cls()


class Alert(models.Model):
    """A condition the owner should know about. One open alert per (kind, subject): repeats
    update it in place instead of piling up, until it is acknowledged, or — for a condition
    that is a state (low stock, the forecast, the failing inbox) — until the state clears and
    the check marks it resolved.

    ``count`` is what the condition counts: the events seen (signature failures, slow
    deliveries, holds and blocks in the window); a state condition stays at 1 however often it
    is checked. Its email is an outbox message (``email_message_key``): what really happened to
    it is read there (``riskrules.alerts.alert_email_state``), never assumed."""

    class Kind(models.TextChoices):
        LOW_STOCK = "low_stock", "Low stock"
        STOCK_FORECAST = "stock_forecast", "Stock runs out within a day"
        SLOW_DELIVERY = "slow_delivery", "Slow delivery"
        RISK_SPIKE = "risk_spike", "Spike of holds or blocks"
        FAILED_DELIVERY = "failed_delivery", "Failed deliveries"
        WEBHOOK_SIGNATURE = "webhook_signature", "Webhook signature failures"

    class EmailStatus(models.TextChoices):
        NONE = "", "Not emailed"
        QUEUED = "queued", "Email queued"
        NO_RECIPIENT = "no_recipient", "Not emailed: no owner email in the shop settings"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=120, blank=True, help_text="What it is about.")
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    email_status = models.CharField(
        max_length=12, choices=EmailStatus.choices, default=EmailStatus.NONE, blank=True
    )
    email_queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When an email was last queued (the reminder interval)."
    )
    email_message_key = models.CharField(
        max_length=200, blank=True, help_text="The outbox message of the latest email."
    )
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the check found the condition gone."
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=Q(acknowledged_at__isnull=True, resolved_at__isnull=True),
                name="alert_one_open_per_condition",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None and self.resolved_at is None
