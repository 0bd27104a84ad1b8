"""Admin for the key pool: browse keys and imports, void leaked keys. Never shows a secret.

Keys enter only through imports (``keys_import`` encrypts and de-duplicates; a plain add form
would do neither) and leave sale only by voiding or selling, so these pages are read-only
apart from the "void" action. The ciphertext and fingerprint are excluded everywhere: even
encrypted they are no business of a browser, and the fingerprint would let anyone with a
candidate key confirm it is in the pool. For the same reason only the owner may search by a
pasted key: for anyone else the search would answer "is this key ours?" (issue #9). The one
place plaintext keys appear in the admin is the owner's recorded reveal (``orders.admin``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from cardpool.crypto import fingerprint
from cardpool.models import CardKey, ImportBatch
from cardpool.services import keys_void
from core.admin import ReadOnlyAdmin
from core.roles import is_owner

SECRET_FIELDS = ["secret", "fingerprint"]


@admin.register(CardKey)
class CardKeyAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "status", "order", "slot", "batch", "created_at", "sold_at"]
    list_filter = ["status", "product"]
    list_select_related = ["product", "order", "batch__product"]
    search_fields = ["=order__order_no"]
    search_help_text = (
        "An order number. The shop owner may also paste a whole key to find it (matched by "
        "fingerprint)."
    )
    exclude = SECRET_FIELDS
    readonly_fields = ["product", "status", "order", "slot", "batch", "created_at", "sold_at"]
    actions = ["void_selected"]
    # Pools run to 100,000s of rows: skip the extra unfiltered COUNT(*) on every search.
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[CardKey], search_term: str
    ) -> tuple[QuerySet[CardKey], bool]:
        """Also find a key by its plaintext: the term is fingerprinted, so the owner can ask
        "is this key (reported by a buyer) ours, and who got it?" without any secret being
        stored or shown. Only the owner's searches do this: see the module docstring."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and is_owner(request.user):
            results = results | queryset.filter(fingerprint=fingerprint(term))
        return results, may_have_duplicates

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CardKey | None = None) -> bool:
        # Without an object this gates list actions (void); with one, the change form, which
        # stays read-only: status moves only through services.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: CardKey | None = None) -> bool:
        # Sold keys are the buyer's record; unsold ones are voided, which keeps the audit trail.
        return False

    @admin.action(description="Void selected available keys", permissions=["change"])
    def void_selected(self, request: HttpRequest, queryset: QuerySet[CardKey]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        voided = keys_void(key_ids=selected)
        left = len(selected) - voided
        message = f"Voided {voided} key{'s' if voided != 1 else ''}."
        if left:
            message += (
                f" {left} selected were not available (sold or already void) and stay as they were."
            )
        self.message_user(request, message, messages.SUCCESS if voided else messages.WARNING)


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    """Read-only audit of imports; a batch is written once, by ``keys_import``."""

    list_display = [
        "id",
        "product",
        "source",
        "created_by",
        "imported",
        "duplicates",
        "skipped",
        "report",
        "created_at",
    ]
    list_filter = ["source", "product"]
    list_select_related = ["product", "created_by"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "product",
        "source",
        "created_by",
        "imported",
        "duplicates",
        "skipped",
        "report",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description="report")
    def report(self, obj: ImportBatch) -> str:
        return obj.report
