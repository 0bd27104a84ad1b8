"""The owner's catalog admin: categories, products with live stock, the shop settings and the
audit log (read-only, the owner's alone).

Stock is never stored (see ``orders.stock``), so the product list annotates it with
``with_stock`` — a few correlated subqueries in the one list query, never a query per row,
which keeps the page fast with hundreds of products and 100,000-key pools.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from cardpool.admin_views import IMPORT_PERMISSION, product_keys_import
from cardpool.models import CardKey
from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.money import to_decimal_string
from core.roles import is_owner
from orders.followups.admin import ProductFollowUpsInline
from orders.followups.selectors import survey_score_for
from orders.stock import stock_figures, with_stock
from shop.models import AuditEntry, Category, Product, ShopSettings


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "sort_order"]
    list_editable = ["sort_order"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


def _with_sold_count(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """Add ``sold_count`` as a correlated subquery, for the same one-query reason as stock.

    It lives here rather than in ``shop.selectors`` only because that module belongs to
    another change in flight; it is a read and should move there.
    """
    sold = (
        CardKey.objects.filter(product=OuterRef("pk"), status=CardKey.Status.SOLD)
        .values("product")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        sold_count=Coalesce(
            Subquery(sold, output_field=IntegerField()), Value(0, output_field=IntegerField())
        )
    )


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "category",
        "price_display",
        "on_sale",
        "available_keys_display",
        "claimed_display",
        "stock_display",
        "sold_display",
    ]
    list_display_links = ["name"]
    list_filter = ["on_sale", "category"]
    list_select_related = ["category"]
    search_fields = ["name", "name_zh", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at", "survey_display"]
    change_form_template = "admin/cardpool/product_change_form.html"
    inlines = [ProductFollowUpsInline]

    class Media:
        css = {"all": ["admin/kami-admin.css"]}  # no inline styles under the CSP

    fieldsets = [
        (
            None,
            {
                "fields": ["name", "slug", "category", "description"],
                "description": (
                    "The description may use a little HTML: p, br, strong, em, ul/ol/li, h3, "
                    "h4, code, blockquote, links and images (https:// or this shop's own paths). "
                    "Anything else is removed when it is shown."
                ),
            },
        ),
        (
            "Chinese (简体中文)",
            {
                "fields": ["name_zh", "description_zh"],
                "description": "Optional: buyers reading Chinese see these; empty ones fall back.",
            },
        ),
        ("Selling", {"fields": ["price", "currency", "on_sale", "max_per_order"]}),
        ("Display", {"fields": ["low_stock_threshold", "sort_order"]}),
        ("Messages to the buyer", {"fields": ["usage_instructions", "message_channels"]}),
        ("Satisfaction survey", {"fields": ["survey_display"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Answers")
    def survey_display(self, obj: Product) -> str:
        if obj.pk is None:
            return "-"
        score = survey_score_for(obj.pk)
        if not score["answers"]:
            return "No answers yet."
        return f"{score['average']:.1f} / 5 from {score['answers']} answer(s)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return _with_sold_count(with_stock(super().get_queryset(request)))

    def get_list_display(self, request: HttpRequest) -> list[str]:
        # The import button only for those who may import: a dead link is worse than none.
        columns = list(super().get_list_display(request))
        if request.user.has_perm(IMPORT_PERMISSION):
            columns.append("import_keys_link")
        return columns

    def get_urls(self) -> list[URLPattern]:
        # Before the default URLs: their "<path:object_id>/" would swallow this one.
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:product_id>/import-keys/",
                self.admin_site.admin_view(self.import_keys_view),
                name="{}_{}_import_keys".format(*info),
            ),
            *super().get_urls(),
        ]

    def import_keys_view(self, request: HttpRequest, product_id: int) -> HttpResponse:
        """The import page belongs to cardpool (it owns the key pool); it is mounted here so
        its URL reads as an action on the product."""
        return product_keys_import(
            request, product_id=product_id, admin_site=self.admin_site, stock_figures=stock_figures
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_import_keys": request.user.has_perm(IMPORT_PERMISSION),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="price", ordering="price")
    def price_display(self, obj: Product) -> str:
        return f"{to_decimal_string(obj.price, obj.currency)} {obj.currency}"

    @admin.display(description="available keys", ordering="available_keys")
    def available_keys_display(self, obj: Product) -> int:
        return obj.available_keys

    @admin.display(description="claimed", ordering="claimed")
    def claimed_display(self, obj: Product) -> int:
        """Held by unpaid orders still in their window, plus paid backorders waiting."""
        return obj.claimed

    @admin.display(description="stock", ordering="stock")
    def stock_display(self, obj: Product) -> str:
        # Low stock stands out so the owner restocks before buyers see "sold out".
        if obj.stock <= obj.low_stock_threshold:
            return format_html('<strong class="kami-low-stock">{}</strong>', obj.stock)
        return str(obj.stock)

    @admin.display(description="sold", ordering="sold_count")
    def sold_display(self, obj: Product) -> int:
        return obj.sold_count

    @admin.display(description="keys")
    def import_keys_link(self, obj: Product) -> str:
        url = reverse("admin:shop_product_import_keys", args=[obj.pk])
        return format_html('<a class="button" href="{}">Import keys</a>', url)


@admin.register(ShopSettings)
class ShopSettingsAdmin(SingletonAdmin):
    fieldsets = [
        (None, {"fields": ["shop_name", "owner_email"]}),
        (
            "Orders",
            {
                "fields": [
                    "hold_minutes",
                    "max_unpaid_per_email",
                    "max_unpaid_per_ip",
                    "max_unpaid_per_network",
                ]
            },
        ),
        (
            "Holds that cannot be hoarded",
            {
                "fields": ["hold_share_percent", "hold_min_keys", "backorder_refund_after_hours"],
                "description": (
                    "Unpaid orders together hold at most a share of each product's keys; "
                    "beyond it orders are still taken, and whoever pays first gets the keys. "
                    "See docs/holds.md."
                ),
            },
        ),
        ("Delivery", {"fields": ["priority_amount"]}),
        ("Messages", {"fields": ["message_channels", "callback_url", "callback_secret"]}),
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Who changed which sensitive setting, rate, withdrawal, account or role, and every key
    reveal. Nothing here edits a row, and PostgreSQL refuses to (``shop.audit``)."""

    list_display = ["created_at", "actor_name", "action", "object_type", "object_repr", "summary"]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["object_repr", "=object_id", "actor_name", "note"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "created_at",
        "actor_name",
        "client_ip",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_table",
        "note",
    ]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_owner(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_owner(request.user) and super().has_module_permission(request)

    @admin.display(description="fields")
    def summary(self, obj: AuditEntry) -> str:
        return ", ".join(obj.changes)[:120]

    @admin.display(description="changes")
    def changes_table(self, obj: AuditEntry) -> str:
        rows = ((name, *_before_after(value)) for name, value in obj.changes.items())
        return format_html(
            "<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


def _before_after(value: Any) -> tuple[str, str]:
    if isinstance(value, list) and len(value) == 2:
        return tuple("—" if v is None else str(v) for v in value)  # type: ignore[return-value]
    return ("", str(value))


admin.site.site_header = "Kami — shop owner"
admin.site.site_title = "Kami admin"
admin.site.index_title = "Products, keys, orders and promoters"
