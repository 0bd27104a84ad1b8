"""Card keys: the secrets a shop sells, encrypted at rest, each sold at most once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ImportBatch(models.Model):
    """One bulk import, with its report; keys point back to it for audit and exact counts."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        CLI = "cli", "Command line"

    product = models.ForeignKey("shop.Product", on_delete=models.CASCADE, related_name="imports")
    source = models.CharField(max_length=8, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"Import #{self.pk} into {self.product}"

    @property
    def report(self) -> str:
        return import_report_text(self.imported, self.duplicates, self.skipped)


def import_report_text(imported: int, duplicates: int, skipped: int) -> str:
    """The one wording of an import's outcome (``import_keys`` prints it: contract §3)."""
    return f"imported {imported}, duplicates {duplicates}, skipped {skipped}"


class CardKey(models.Model):
    """A single key. ``secret`` is Fernet ciphertext; ``fingerprint`` de-duplicates per product.

    Stock is held key by key, not counted on the product: checkout *reserves* rows for its
    pending order until ``reserved_until`` (the order's hold), payment flips that order's rows
    to *sold*. Two buyers of one product therefore contend only for the same key row, and
    ``SKIP LOCKED`` moves each to the next one.

    The check constraint ties the status to ownership: a reserved or sold key always names its
    order and a slot in it, an available or void key never does; ``(order, slot)`` is unique, so
    one order cannot be given the same slot twice even by a buggy or replayed delivery.
    """

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        RESERVED = "reserved", "Reserved"
        SOLD = "sold", "Sold"
        VOID = "void", "Void"

    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="keys")
    secret = models.BinaryField()
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="keys"
    )
    slot = models.PositiveSmallIntegerField(null=True, blank=True)
    reserved_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A reserved key is its pending order's until then; after it, anyone's.",
    )
    batch = models.ForeignKey(
        ImportBatch, on_delete=models.SET_NULL, null=True, blank=True, related_name="keys"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sold_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "fingerprint"], name="cardkey_unique_per_product"
            ),
            models.UniqueConstraint(fields=["order", "slot"], name="cardkey_unique_order_slot"),
            models.CheckConstraint(
                condition=(
                    Q(
                        status="sold",
                        order__isnull=False,
                        slot__gte=1,
                        sold_at__isnull=False,
                        reserved_until__isnull=True,
                    )
                    | Q(
                        status="reserved",
                        order__isnull=False,
                        slot__gte=1,
                        sold_at__isnull=True,
                        reserved_until__isnull=False,
                    )
                    | Q(
                        status__in=["available", "void"],
                        order__isnull=True,
                        slot__isnull=True,
                        sold_at__isnull=True,
                        reserved_until__isnull=True,
                    )
                ),
                name="cardkey_status_matches_owner",
            ),
        ]
        indexes = [
            models.Index(
                fields=["product", "id"],
                name="cardkey_available_idx",
                condition=Q(status="available"),
            ),
            # Reservations that lapsed are free stock again; found by product and deadline.
            models.Index(
                fields=["product", "reserved_until"],
                name="cardkey_reserved_idx",
                condition=Q(status="reserved"),
            ),
        ]

    def __str__(self) -> str:  # never the secret: this string lands in logs and admin titles
        return f"Key #{self.pk} ({self.get_status_display()})"
