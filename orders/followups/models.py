"""The follow-ups' tables: what is scheduled per order, the owner's per-product settings and
message templates, the buyers' survey answers and unsubscribes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from shop.rich_text import sanitize_html


class FollowUpPurpose(models.TextChoices):
    """The outbox purposes written by this package (``MessagePurpose`` has the same values)."""

    KEY_GUIDE = "key_guide", "Where to find your key (5 minutes after delivery)"
    HOW_TO = "how_to", "How to use it (right after delivery)"
    CHECK_IN = "check_in", "Check-in (after 3 days)"
    RECOMMENDATION = "recommendation", "Recommendation (after 7 days)"
    SURVEY = "survey", "Satisfaction survey (after 5 days)"


# Not marketing: the key guide is about the order itself and ignores unsubscribes.
TRANSACTIONAL = frozenset({FollowUpPurpose.KEY_GUIDE})


class FollowUpState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Handed to the outbox"
    SKIPPED = "skipped", "Skipped"


class FollowUp(models.Model):
    """One follow-up of one order: scheduled at delivery, decided once when due."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="follow_ups")
    purpose = models.CharField(max_length=32, choices=FollowUpPurpose.choices)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=FollowUpState.choices, default=FollowUpState.SCHEDULED
    )
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was skipped.")
    variant = models.CharField(
        max_length=1, blank=True, help_text="The template variant (a/b) when an A/B test runs."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "purpose"], name="followup_one_per_order_purpose"
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="followup_due_idx",
                condition=Q(state="scheduled"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} for order {self.order_id} ({self.state})"


class ProductFollowUps(models.Model):
    """The owner's follow-ups for one product; each is off until switched on."""

    product = models.OneToOneField(
        "shop.Product", on_delete=models.CASCADE, related_name="follow_ups"
    )
    how_to_html = models.TextField(
        "how-to-use text",
        blank=True,
        help_text=(
            "Sent right after delivery. A little HTML: p, strong, em, lists, h3/h4, links and "
            "images (https://); anything else is removed."
        ),
    )
    video_url = models.URLField("video link", blank=True, max_length=500)
    send_how_to = models.BooleanField("send the how-to", default=False)
    send_check_in = models.BooleanField("send a check-in after 3 days", default=False)
    send_recommendation = models.BooleanField("send a recommendation after 7 days", default=False)
    send_survey = models.BooleanField("send a satisfaction survey", default=False)

    class Meta:
        verbose_name = "follow-ups"
        verbose_name_plural = "follow-ups"

    def __str__(self) -> str:
        return f"Follow-ups of product {self.product_id}"

    def save(self, *args, **kwargs) -> None:
        self.how_to_html = sanitize_html(self.how_to_html)
        super().save(*args, **kwargs)

    def sends(self, purpose: str) -> bool:
        return {
            FollowUpPurpose.KEY_GUIDE: True,
            FollowUpPurpose.HOW_TO: self.send_how_to and bool(self.how_to_html.strip()),
            FollowUpPurpose.CHECK_IN: self.send_check_in,
            FollowUpPurpose.RECOMMENDATION: self.send_recommendation,
            FollowUpPurpose.SURVEY: self.send_survey,
        }.get(purpose, False)


class MessageTemplate(models.Model):
    """The owner's words for one follow-up: for one product, or the shop's default. A second
    row with variant B starts an A/B test (orders are split by a hash of their number)."""

    class Variant(models.TextChoices):
        A = "a", "A"
        B = "b", "B (A/B test)"

    purpose = models.CharField(max_length=32, choices=FollowUpPurpose.choices)
    product = models.ForeignKey(
        "shop.Product",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="message_templates",
        help_text="Blank: the shop's default for every product without its own.",
    )
    variant = models.CharField(max_length=1, choices=Variant.choices, default=Variant.A)
    subject = models.CharField(max_length=200)
    body = models.TextField(
        help_text=(
            "Variables: {{ order_no }}, {{ product }}, {{ order_url }}, {{ buyer_name }}, "
            "{{ shop_name }}, {{ survey_url }}, {{ video_url }}, {% for r in recommendations %}"
            "{{ r.name }} {{ r.url }}{% endfor %}. Escaped in the HTML email."
        )
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["purpose", "product_id", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "product", "variant"],
                condition=Q(product__isnull=False),
                name="messagetemplate_one_per_product",
            ),
            models.UniqueConstraint(
                fields=["purpose", "variant"],
                condition=Q(product__isnull=True),
                name="messagetemplate_one_default",
            ),
        ]

    def __str__(self) -> str:
        scope = self.product.name if self.product_id else "shop default"
        return f"{self.get_purpose_display()} · {scope} · {self.variant.upper()}"

    def clean(self) -> None:
        from orders.followups.templates import template_errors

        errors = template_errors(subject=self.subject, body=self.body)
        if errors:
            raise ValidationError(errors)


class SurveyResponse(models.Model):
    """The buyer's answer to the survey: one per order (a second answer replaces it)."""

    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, related_name="survey_response"
    )
    product = models.ForeignKey(
        "shop.Product", on_delete=models.CASCADE, related_name="survey_responses"
    )
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=1, score__lte=5), name="surveyresponse_score_1_to_5"
            ),
        ]
        indexes = [models.Index(fields=["product", "score"], name="survey_product_score_idx")]

    def __str__(self) -> str:
        return f"{self.score}/5 for order {self.order_id}"


class Unsubscribe(models.Model):
    """A buyer who wants no more follow-ups, by identity (the folded email)."""

    identity = models.CharField(max_length=254, unique=True)
    source = models.CharField(max_length=16, help_text="one-click (the mail client) or page.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.identity
