"""Promoters, attribution, commission rules, the append-only ledger and withdrawals.

Money is integer minor units everywhere here. The ledger (``LedgerEntry``) is append-only:
amounts are never updated or deleted (a PostgreSQL trigger refuses it, see migration 0003), a
correction is a new entry, and unique constraints make posting one order's commission twice
for a level impossible. Balances are *derived* from the entries (``commissions.selectors``).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from shop.models import SingletonModel

MAX_LEVELS = 2  # level 1: direct promoter; level 2: their upline. Never more (see issue #3).


class CommissionSettings(SingletonModel):
    """Owner-tunable promoter programme settings; one row, ``CommissionSettings.load()``."""

    class AttributionModel(models.TextChoices):
        LAST_CLICK = "last_click", "Last click wins"
        FIRST_CLICK = "first_click", "First click wins"

    level1_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Shop default for the direct promoter, percent of the order.",
    )
    level2_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("3.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Shop default team reward for the promoter's upline, percent of the order.",
    )
    hold_days = models.PositiveIntegerField(
        default=7, help_text="Days after delivery before a commission can be withdrawn."
    )
    min_withdrawal = models.BigIntegerField(
        default=1000,
        validators=[MinValueValidator(1)],
        help_text="Minimum withdrawal in minor units of the shop currency (1000 = 10.00).",
    )
    currency = models.CharField(
        max_length=3, default="USD", help_text="The currency balances are shown in."
    )
    attribution_window_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    attribution_model = models.CharField(
        max_length=12, choices=AttributionModel.choices, default=AttributionModel.LAST_CLICK
    )
    approval_required = models.BooleanField(
        default=False, help_text="New promoters wait for the owner's approval before earning."
    )
    payout_methods = models.JSONField(
        default=list,
        blank=True,
        help_text='Payout methods promoters may choose, e.g. ["alipay", "paypal"]. '
        "Empty means all.",
    )

    class Meta:
        verbose_name = "commission settings"
        verbose_name_plural = "commission settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="commissionsettings_singleton"),
        ]

    def __str__(self) -> str:
        return "Commission settings"


class PromoterTier(models.Model):
    """A named rate band (e.g. "Gold") the owner assigns promoters to."""

    name = models.CharField(max_length=40, unique=True)

    def __str__(self) -> str:
        return self.name


class Promoter(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promoter"
    )
    code = models.CharField(max_length=32, unique=True, help_text="Upper-case referral code.")
    upline = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="team"
    )
    tier = models.ForeignKey(
        PromoterTier, on_delete=models.SET_NULL, null=True, blank=True, related_name="promoters"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(upline=F("id")), name="promoter_not_own_upline"),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z0-9_-]{1,32}$"), name="promoter_code_format"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CommissionRule(models.Model):
    """A rate override. Scope decides priority: promoter × product > product > tier.

    Either a percentage of the order or a fixed amount per unit, with an optional cap per order.
    """

    level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_LEVELS)]
    )
    promoter = models.ForeignKey(
        Promoter, on_delete=models.CASCADE, null=True, blank=True, related_name="rules"
    )
    product = models.ForeignKey(
        "shop.Product", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tier = models.ForeignKey(
        PromoterTier, on_delete=models.CASCADE, null=True, blank=True, related_name="rules"
    )
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    fixed_per_unit = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="Minor units."
    )
    cap_per_order = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="Minor units."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(level__gte=1, level__lte=MAX_LEVELS), name="rule_level_1_or_2"
            ),
            models.CheckConstraint(
                condition=(Q(percent__isnull=False) & Q(fixed_per_unit__isnull=True))
                | (Q(percent__isnull=True) & Q(fixed_per_unit__isnull=False)),
                name="rule_percent_xor_fixed",
            ),
            # The three scopes the priority knows; anything else would never apply.
            models.CheckConstraint(
                condition=(
                    Q(promoter__isnull=False, product__isnull=False, tier__isnull=True)
                    | Q(promoter__isnull=True, product__isnull=False, tier__isnull=True)
                    | Q(promoter__isnull=True, product__isnull=True, tier__isnull=False)
                ),
                name="rule_scope_known",
            ),
            models.UniqueConstraint(
                fields=["level", "promoter", "product"],
                condition=Q(promoter__isnull=False),
                name="rule_unique_promoter_product",
            ),
            models.UniqueConstraint(
                fields=["level", "product"],
                condition=Q(promoter__isnull=True, product__isnull=False),
                name="rule_unique_product",
            ),
            models.UniqueConstraint(
                fields=["level", "tier"], condition=Q(tier__isnull=False), name="rule_unique_tier"
            ),
        ]

    def __str__(self) -> str:
        scope = " × ".join(str(x) for x in (self.promoter, self.product, self.tier) if x)
        rate = f"{self.percent}%" if self.percent is not None else f"{self.fixed_per_unit}/unit"
        return f"L{self.level} {scope}: {rate}"


class ReferralClick(models.Model):
    """One visit that arrived with ``?ref=CODE``. The IP is stored only as a keyed hash."""

    promoter = models.ForeignKey(Promoter, on_delete=models.CASCADE, related_name="clicks")
    created_at = models.DateTimeField(auto_now_add=True)
    landing_path = models.CharField(max_length=400)
    referrer = models.CharField(max_length=400, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        indexes = [models.Index(fields=["promoter", "created_at"], name="click_promoter_time_idx")]

    def __str__(self) -> str:
        return f"{self.promoter_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class PromoterSighting(models.Model):
    """An IP (hashed) a promoter used while logged in: the same-IP self-referral check."""

    promoter = models.ForeignKey(Promoter, on_delete=models.CASCADE, related_name="sightings")
    ip_hash = models.CharField(max_length=64)
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["promoter", "ip_hash"], name="sighting_unique")
        ]
        indexes = [models.Index(fields=["ip_hash", "last_seen"], name="sighting_ip_idx")]

    def __str__(self) -> str:
        return f"{self.promoter_id} seen {self.last_seen:%Y-%m-%d}"


class Attribution(models.Model):
    """What an order's referral code meant, frozen at checkout (one row per referred order).

    Also remembers how much of the order's money was lost to refunds and disputes, so that
    clawbacks are computed from the state, not added up call by call (a dispute followed by a
    refund of the same money claws back once).
    """

    class Status(models.TextChoices):
        ATTRIBUTED = "attributed", "Attributed"
        REFUSED = "refused", "Refused (self-referral)"
        UNKNOWN = "unknown", "Unknown or inactive code"

    class Refusal(models.TextChoices):
        OWN_ACCOUNT = "own_account", "Promoter's own account"
        OWN_EMAIL = "own_email", "Promoter's own email"
        SAME_IP = "same_ip", "Promoter's own IP address"

    order = models.OneToOneField(
        "orders.Order", on_delete=models.PROTECT, related_name="attribution"
    )
    ref_code = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices)
    promoter = models.ForeignKey(
        Promoter, on_delete=models.PROTECT, null=True, blank=True, related_name="attributions"
    )
    upline = models.ForeignKey(
        Promoter, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refusal = models.CharField(max_length=12, choices=Refusal.choices, blank=True)
    upline_refusal = models.CharField(max_length=12, choices=Refusal.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    posted_at = models.DateTimeField(
        null=True, blank=True, help_text="When delivery posted this order's commissions."
    )
    # Money lost on the order (minor units), tracked for clawbacks.
    refunded_seen = models.BigIntegerField(default=0)
    disputed_total = models.BigIntegerField(default=0)
    refunded_before_dispute = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="attributed") | Q(promoter__isnull=False),
                name="attribution_has_promoter",
            ),
            models.CheckConstraint(
                condition=Q(upline__isnull=True) | ~Q(upline=F("promoter")),
                name="attribution_upline_differs",
            ),
        ]
        indexes = [
            models.Index(fields=["promoter", "created_at"], name="attribution_promoter_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} → {self.ref_code} ({self.status})"


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        PAID = "paid", _("Paid")

    class Method(models.TextChoices):
        ALIPAY = "alipay", _("Alipay")
        WECHAT = "wechat", _("WeChat Pay")
        BANK = "bank", _("Bank transfer")
        USDT = "usdt", _("USDT address")
        PAYPAL = "paypal", _("PayPal")

    promoter = models.ForeignKey(Promoter, on_delete=models.PROTECT, related_name="withdrawals")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=10, choices=Method.choices)
    account = models.CharField(max_length=200)
    account_key = models.CharField(
        max_length=220, db_index=True, help_text="Normalised method:account, to spot duplicates."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.TextField(blank=True, help_text="Why it was rejected.")
    reference = models.CharField(max_length=200, blank=True, help_text="Payout reference.")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(reason=""), name="withdrawal_reject_reason"
            ),
        ]
        indexes = [models.Index(fields=["promoter", "status"], name="withdrawal_promoter_idx")]

    def __str__(self) -> str:
        return f"W{self.pk} {self.promoter} {self.amount} {self.status}"


class LedgerEntry(models.Model):
    """One movement of promoter money. Append-only; amounts are signed minor units."""

    class Kind(models.TextChoices):
        COMMISSION = "commission", "Commission earned"
        CLAWBACK = "clawback", "Clawback"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        WITHDRAWAL_REVERSAL = "reversal", "Withdrawal reversal"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    promoter = models.ForeignKey(Promoter, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    withdrawal = models.ForeignKey(
        Withdrawal, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    available_at = models.DateTimeField(
        help_text="From then on the entry counts as available rather than pending."
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "level"],
                condition=Q(kind="commission"),
                name="ledger_one_commission_per_order_level",
            ),
            models.UniqueConstraint(
                fields=["withdrawal", "kind"],
                condition=Q(withdrawal__isnull=False),
                name="ledger_one_entry_per_withdrawal_kind",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="commission", amount__gt=0)
                    | Q(kind="clawback", amount__lt=0)
                    | Q(kind="withdrawal", amount__lt=0)
                    | Q(kind="reversal", amount__gt=0)
                    | (Q(kind="adjustment") & ~Q(amount=0) & ~Q(reason=""))
                ),
                name="ledger_kind_sign",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["commission", "clawback"])
                | Q(order__isnull=False, level__gte=1, level__lte=MAX_LEVELS),
                name="ledger_order_entries_have_order_and_level",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["withdrawal", "reversal"]) | Q(withdrawal__isnull=False),
                name="ledger_withdrawal_entries_have_withdrawal",
            ),
        ]
        indexes = [
            # Balances: one index-only range scan per promoter, even with 100k entries
            # (``amount`` is a key column rather than INCLUDE so SQLite builds it too).
            models.Index(fields=["promoter", "available_at", "amount"], name="ledger_balance_idx"),
            models.Index(fields=["promoter", "kind", "-created_at"], name="ledger_list_idx"),
            models.Index(fields=["order", "level"], name="ledger_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} → {self.promoter_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Ledger entries are append-only: post a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger entries are append-only: post a new entry instead.")


class ApiToken(models.Model):
    """A Bearer token for the API. Only its SHA-256 is stored; the token is shown once.
    It stops working at ``expires_at``, on a password change (the row is deleted) and while
    its user is inactive (``commissions.api_tokens``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
