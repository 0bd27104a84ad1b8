"""Promoters: people who bring buyers with a referral code. The ledger comes with issue #3."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Promoter(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promoter"
    )
    code = models.CharField(max_length=32, unique=True, help_text="Upper-case referral code.")
    upline = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="team"
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
