"""The owner's key import page: paste keys or upload a file, get "imported N, duplicates D,
skipped S".

One view answers two clients. A plain form post gets HTML (post/redirect/get with the report
as a message), so the page works without JavaScript. ``static/admin/kami-import.js`` sends the
same form with ``XMLHttpRequest`` to show upload progress for big files, marks the request
with ``X-Requested-With: XMLHttpRequest``, and gets the report back as JSON. Either way the
work is ``cardpool.services.keys_import``; this module only turns a request into its
arguments and its result into a response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import formats, timezone

from cardpool.models import ImportBatch
from cardpool.services import ImportReport, keys_import
from core.middleware import allow_large_body
from shop.models import Product

IMPORT_PERMISSION = "cardpool.add_cardkey"

# Far above a 100,000-key file (a few MB), far below what would hurt the server: the whole
# file is decoded in memory before import.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# The page's form (paste or file) may be this large; every other request is held to 1 MB. The
# name is the one ``shop.admin.ProductAdmin`` mounts ``product_keys_import`` under.
allow_large_body("admin:shop_product_import_keys", MAX_UPLOAD_BYTES)
RECENT_IMPORTS = 10


class KeyImportForm(forms.Form):
    """Either pasted text or one uploaded file. ``clean`` leaves ``text`` and ``filename`` as
    ``keys_import`` wants them, so the view never touches the upload itself."""

    text = forms.CharField(
        label="Paste keys",
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 12, "cols": 80, "spellcheck": "false", "autocomplete": "off"}
        ),
        help_text="One key per line. Blank lines are skipped.",
    )
    file = forms.FileField(
        label="…or upload a file",
        required=False,
        help_text="A .txt file with one key per line, or a .csv file with a 'key' column. UTF-8.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        text: str = cleaned.get("text") or ""
        upload: UploadedFile | None = cleaned.get("file")
        if self.errors:  # e.g. an empty file: that error already says it all
            return cleaned
        if upload is not None and text.strip():
            raise ValidationError(
                "Paste keys or upload a file, not both: it is unclear which one you meant."
            )
        if upload is None:
            if not text.strip():
                raise ValidationError("Paste some keys or choose a file to upload.")
            cleaned["filename"] = ""
            return cleaned
        cleaned["text"] = self._decode(upload)
        cleaned["filename"] = upload.name or ""
        return cleaned

    @staticmethod
    def _decode(upload: UploadedFile) -> str:
        if upload.size and upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                f"{upload.name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: "
                "split it into several files."
            )
        try:
            # utf-8-sig: spreadsheet programs put a byte-order mark in front of CSV exports.
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(
                f"{upload.name} is not UTF-8 text. Save it as UTF-8 (plain text or CSV) "
                "and upload it again."
            ) from None
        if "\x00" in text:
            # Valid UTF-8 yet full of NULs: UTF-16 without a BOM, or a binary file. Importing
            # it would "skip" every line and look like success.
            raise ValidationError(
                f"{upload.name} looks like UTF-16 or a binary file, not UTF-8 text."
            )
        return text


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _form_errors(form: forms.Form) -> list[str]:
    errors: list[str] = []
    for name, field_errors in form.errors.items():
        label = "" if name == NON_FIELD_ERRORS else f"{form.fields[name].label}: "
        errors.extend(f"{label}{message}" for message in field_errors)
    return errors


# ``available_keys``, ``claimed`` and ``stock`` of a product. Claims on keys are order state, so
# the figure is orders' (``orders.stock.stock_figures``); the product admin, which may read
# orders, hands it in and the pool stays ignorant of orders.
StockFigures = Callable[[int], Mapping[str, int]]


def _report_json(
    report: ImportReport, product: Product, stock_figures: StockFigures
) -> dict[str, Any]:
    batch = ImportBatch.objects.select_related("created_by").get(pk=report.batch_id)
    return {
        "ok": True,
        "message": f"{product}: {report}",
        "report": {
            "batch_id": report.batch_id,
            "imported": report.imported,
            "duplicates": report.duplicates,
            "skipped": report.skipped,
        },
        # What the page's "Recent imports" table shows, so the script can add the row.
        "batch": {
            "id": batch.pk,
            "created_at": formats.localize(timezone.localtime(batch.created_at)),
            "source": batch.get_source_display(),
            "created_by": str(batch.created_by or ""),
            "imported": batch.imported,
            "duplicates": batch.duplicates,
            "skipped": batch.skipped,
        },
        "stock": dict(stock_figures(product.pk)),
    }


def product_keys_import(
    request: HttpRequest, *, product_id: int, admin_site: AdminSite, stock_figures: StockFigures
) -> HttpResponse:
    """Show the import form (GET) or import (POST). Mounted by ``shop.admin.ProductAdmin``
    behind ``admin_site.admin_view``, which already requires an active staff login and CSRF."""
    if not request.user.has_perm(IMPORT_PERMISSION):
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": ["You may not import keys."]}, status=403)
        raise PermissionDenied
    product = get_object_or_404(Product, pk=product_id)

    if request.method == "POST":
        form = KeyImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                report = keys_import(
                    product=product,
                    text=form.cleaned_data["text"],
                    filename=form.cleaned_data["filename"],
                    source=ImportBatch.Source.ADMIN,
                    user=request.user,
                )
            except ValueError as exc:
                # Raised while parsing, before the import's transaction: nothing was written.
                form.add_error(None, str(exc))
            else:
                if _wants_json(request):
                    return JsonResponse(_report_json(report, product, stock_figures))
                messages.success(request, f"{product}: {report}.")
                # Redirect so a reload cannot post the same keys again.
                return HttpResponseRedirect(request.path)
        if _wants_json(request):
            errors = _form_errors(form)
            return JsonResponse(
                {"ok": False, "errors": errors, "message": " ".join(errors)}, status=400
            )
    else:
        form = KeyImportForm()

    context = {
        **admin_site.each_context(request),
        "title": f"Import keys: {product}",
        "subtitle": None,
        "opts": Product._meta,
        "product": product,
        "stock": dict(stock_figures(product.pk)),
        "form": form,
        "recent_imports": ImportBatch.objects.filter(product=product)
        .select_related("created_by")
        .order_by("-created_at")[:RECENT_IMPORTS],
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/cardpool/import_keys.html", context)
