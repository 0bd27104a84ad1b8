"""The webhook inbox in the admin: stored payment events, their verification and re-processing.

Read-only like the order pages (``orders.admin``): the payload is what the provider sent and
must stay that way, and nothing here deletes. One action re-verifies each stored body against
its signature and queues it through the same task a webhook uses. A provider's payload names
the buyer, so anyone but the owner sees emails in it masked (``core.masking``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from core.masking import mask_emails_in, shown_to
from orders.models import PaymentEvent
from orders.payments.inbox import payment_event_reverify
from orders.tasks import process_payment_event


class ProcessedFilter(admin.SimpleListFilter):
    title = "processed"
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Unprocessed"), ("yes", "Processed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PaymentEvent]):
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        return queryset


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    """The webhook inbox. Events are stored before they are processed, so an unprocessed row
    with an error is the place to look when a paid order did not deliver."""

    list_display = [
        "event_id",
        "provider",
        "type",
        "order",
        "received_at",
        "processed_at",
        "attempts",
        "short_error",
    ]
    list_filter = [ProcessedFilter, "type", "provider"]
    list_select_related = ["order"]
    search_fields = ["=event_id", "=order__order_no"]
    search_help_text = "Exact event id or order number."
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["reprocess_selected"]
    fields = [
        "provider",
        "event_id",
        "type",
        "order",
        "received_at",
        "processed_at",
        "attempts",
        "last_error",
        "signature_now",
        "headers",
        "payload_pretty",
    ]
    readonly_fields = ["payload_pretty", "signature_now", "last_error_masked", "headers_masked"]

    class Media:
        css = {"all": ["admin/kami-admin.css"]}  # no inline styles under the CSP

    # A provider's payload names the buyer (e.g. Stripe's ``customer_details.email``).
    masked = {
        "short_error": "short_error_masked",
        "last_error": "last_error_masked",
        "headers": "headers_masked",
        "payload_pretty": "payload_masked",
    }

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return shown_to(request.user, list(super().get_list_display(request)), self.masked)

    def get_fields(self, request: HttpRequest, obj: PaymentEvent | None = None) -> list[str]:
        return shown_to(request.user, list(self.fields), self.masked)

    def get_readonly_fields(self, request: HttpRequest, obj: PaymentEvent | None = None):
        return [*self.readonly_fields, "payload_masked"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        # Without an object this gates the re-process action; rows themselves are read-only:
        # the payload is what the provider sent and must stay that way.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: PaymentEvent | None = None) -> bool:
        return False

    @admin.display(description="last error")
    def short_error(self, obj: PaymentEvent) -> str:
        first_line = obj.last_error.strip().splitlines()[0] if obj.last_error.strip() else ""
        return first_line[:120]

    @admin.display(description="last error")
    def short_error_masked(self, obj: PaymentEvent) -> str:
        return mask_emails_in(self.short_error(obj))

    @admin.display(description="last error")
    def last_error_masked(self, obj: PaymentEvent) -> str:
        return mask_emails_in(obj.last_error)

    @admin.display(description="headers")
    def headers_masked(self, obj: PaymentEvent) -> str:
        return mask_emails_in(json.dumps(obj.headers, sort_keys=True))

    @admin.display(description="payload")
    def payload_masked(self, obj: PaymentEvent) -> str:
        text = json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="kami-payload">{}</pre>', mask_emails_in(text))

    @admin.display(description="signature")
    def signature_now(self, obj: PaymentEvent) -> str:
        if not bytes(obj.body or b""):
            return "stored before raw bodies were kept: cannot be verified again"
        if payment_event_reverify(event=obj):
            return "valid: the stored body carries the webhook secret's signature"
        return "INVALID: the stored body does not match its signature"

    @admin.display(description="payload")
    def payload_pretty(self, obj: PaymentEvent) -> str:
        return format_html(
            '<pre class="kami-payload">{}</pre>',
            json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False),
        )

    @admin.action(description="Re-verify and re-process selected", permissions=["change"])
    def reprocess_selected(self, request: HttpRequest, queryset: QuerySet[PaymentEvent]) -> None:
        """Verify each unprocessed event's stored body against its signature again, then queue
        it through the same task a webhook uses. One that no longer verifies (its row was
        altered) is not queued. Processed ones are left alone: processing is idempotent
        anyway, but re-queueing them would only add noise to the logs."""
        pending = list(queryset.filter(processed_at__isnull=True))
        queued, refused = [], []
        for event in pending:
            if bytes(event.body or b"") and not payment_event_reverify(event=event):
                refused.append(event.event_id)
                continue
            process_payment_event.delay(event.pk)
            queued.append(event.pk)
        skipped = queryset.count() - len(pending)
        message = f"Queued {len(queued)} event{'s' if len(queued) != 1 else ''} for processing."
        if skipped:
            message += f" {skipped} already processed, left alone."
        if refused:
            message += f" Not queued, signature no longer valid: {', '.join(refused)}."
        level = messages.SUCCESS if queued and not refused else messages.WARNING
        self.message_user(request, message, level)
