"""The public API root: one ``NinjaAPI`` joining each app's router, and its error handlers.

Every error leaves as JSON ``{code, message}``: domain errors carry their own code and status,
invalid input is ``422 invalid``, unknown paths and objects ``404 not_found``, an unreachable
database ``503 unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Router, Schema, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError

from core.db_outage import database_unavailable_response
from core.errors import ErrorOut, KamiError, NotFound, RateLimited
from core.money import to_decimal_string
from shop.rich_text import sanitize_html
from shop.selectors import product_on_sale, products_on_sale

# Answered by ``core.middleware.RequestHardeningMiddleware`` before any handler runs, so no
# route's ``response={...}`` names them: added to every operation's documented responses here.
HARDENING_ERRORS = {
    "400": "NUL character in the address or body, or a malformed Content-Length.",
}
BODY_ERRORS = {
    "413": "The request body is over the endpoint's limit.",
    "415": "The request body is not JSON (Content-Type: application/json).",
}


class KamiAPI(NinjaAPI):
    """The API root; its OpenAPI document also names the errors the request hardening answers
    (schemathesis checks every status an operation returns is documented)."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        error = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                errors = HARDENING_ERRORS | (BODY_ERRORS if "requestBody" in operation else {})
                responses = operation.setdefault("responses", {})
                for status, description in errors.items():
                    responses.setdefault(status, {"description": description, **error})
        return schema


api = KamiAPI(
    title="Kami API",
    version="1.0.0",
    urls_namespace="api-v1",
    description="Kami's public API: catalog, orders and order lookup.",
    # The docs page is ninja's bundled Swagger UI from our static files ("ninja" is an
    # installed app), CSP-clean: no CDN, no inline script. No validator badge, which would
    # send the schema's address to validator.swagger.io.
    docs=Swagger(settings={"validatorUrl": None}),
)


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message}, status=status)


@api.exception_handler(KamiError)
def on_domain_error(request: HttpRequest, exc: KamiError) -> HttpResponse:
    response = _error(request, exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """503 with Retry-After while the database is unreachable (``core.db_outage`` does the
    same for every page; ninja answers DEBUG-mode exceptions itself, so it is told here)."""
    return database_unavailable_response(request)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    parts = []
    for err in exc.errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "payload"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return _error(request, 422, "invalid", "; ".join(parts) or "Invalid input.")


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found.")


HTTP_ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        return _error(request, 401, "unauthorized", "A valid Bearer token is required.")
    if exc.status_code == 400:  # a body that is not JSON is invalid input like any other
        return _error(request, 422, "invalid", "The request body is not valid JSON.")
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    return _error(request, exc.status_code, code, str(exc))


class ProductOut(Schema):
    slug: str
    name: str
    price: str
    currency: str
    stock: int
    category: str | None


class ProductDetailOut(ProductOut):
    description: str = Field(
        description="The owner's description as sanitised HTML (a few formatting tags, links "
        "and images; no script)."
    )


def product_out(product, *, detail: bool = False) -> dict:
    data = {
        "slug": product.slug,
        "name": product.name,
        "price": to_decimal_string(product.price, product.currency),
        "currency": product.currency,
        "stock": product.stock,
        "category": product.category.slug if product.category else None,
    }
    if detail:
        data["description"] = sanitize_html(product.description)
    return data


catalog = Router(tags=["catalog"])


@catalog.get("/products", response=list[ProductOut])
def list_products(request: HttpRequest):
    """Products on sale; ``stock`` is what can be bought right now."""
    return [product_out(p) for p in products_on_sale()]


@catalog.get("/products/{slug}", response={200: ProductDetailOut, 404: ErrorOut})
def get_product(request: HttpRequest, slug: str):
    product = product_on_sale(slug)
    if product is None:
        raise NotFound("No such product is on sale.")
    return product_out(product, detail=True)


api.add_router("", catalog)
api.add_router("", "orders.api.router")
api.add_router("", "orders.support.api.router")
api.add_router("", "commissions.api.router")
