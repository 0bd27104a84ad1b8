"""The owner's follow-ups in the admin: per-product settings (an inline on the product),
message templates with a live preview and their A/B counts, survey answers, unsubscribes."""

from __future__ import annotations

from typing import ClassVar

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.template import TemplateSyntaxError
from django.utils.html import format_html, format_html_join, linebreaks
from django.utils.safestring import mark_safe

from core.admin import ReadOnlyAdmin
from orders.followups.content import follow_up_context
from orders.followups.models import (
    FollowUp,
    MessageTemplate,
    ProductFollowUps,
    SurveyResponse,
    Unsubscribe,
)
from orders.followups.selectors import variant_counts
from orders.followups.templates import render_wording
from orders.models import Order, OrderStatus


class ProductFollowUpsInline(admin.StackedInline):
    model = ProductFollowUps
    can_delete = False
    extra = 1
    max_num = 1
    formfield_overrides: ClassVar = {models.URLField: {"assume_scheme": "https"}}
    fields = [
        "send_how_to",
        "how_to_html",
        "video_url",
        "send_check_in",
        "send_recommendation",
        "send_survey",
    ]


def sample_order(template: MessageTemplate) -> Order:
    """The preview's order: the product's latest delivered one, else an unsaved stand-in."""
    orders = Order.objects.select_related("product").filter(status=OrderStatus.DELIVERED)
    if template.product_id:
        orders = orders.filter(product_id=template.product_id)
    found = orders.order_by("-delivered_at").first()
    if found is not None:
        return found
    from shop.models import Product

    product = template.product or Product.objects.order_by("pk").first() or Product(name="Sample")
    return Order(order_no="K20250101SAMPLE", product=product, email="buyer@example.com")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["purpose", "product", "variant", "subject", "ab_counts"]
    list_filter = ["purpose", "variant"]
    list_select_related = ["product"]
    autocomplete_fields = ["product"]
    readonly_fields = ["preview", "ab_counts"]
    fields = ["purpose", "product", "variant", "subject", "body", "preview", "ab_counts"]

    @admin.display(description="Preview (a sample order)")
    def preview(self, obj: MessageTemplate | None) -> str:
        if obj is None or not obj.pk:
            return "Save to see a preview."
        order = sample_order(obj)
        try:
            rendered = render_wording(
                subject=obj.subject, body=obj.body, context=follow_up_context(order)
            )
        except TemplateSyntaxError as exc:
            return format_html("<p class='errornote'>{}</p>", str(exc))
        return format_html(
            "<p>Order {}</p><p><strong>{}</strong></p><div class='kami-preview'>{}</div>",
            order.order_no,
            rendered.subject,
            mark_safe(linebreaks(rendered.html, autoescape=False)),  # noqa: S308 - escaped
        )

    @admin.display(description="A/B: orders / didn't-receive tickets")
    def ab_counts(self, obj: MessageTemplate | None) -> str:
        if obj is None or not obj.pk:
            return "-"
        return format_html_join(
            " · ",
            "{}: {} / {}",
            (
                (row["variant"].upper(), row["orders"], row["didnt_receive"])
                for row in variant_counts(purpose=obj.purpose)
            ),
        )


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    list_display = ["order", "product", "score", "comment", "updated_at"]
    list_filter = ["score", "product"]
    list_select_related = ["order", "product"]


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ["order", "purpose", "due_at", "state", "reason", "variant"]
    list_filter = ["purpose", "state"]
    list_select_related = ["order"]
    search_fields = ["order__order_no"]


@admin.register(Unsubscribe)
class UnsubscribeAdmin(ReadOnlyAdmin):
    list_display = ["identity", "source", "created_at"]
    search_fields = ["identity"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.is_superuser)
