"""The owner's follow-up templates, rendered safely, and the A/B split.

Owner-written text is a Django template compiled by an engine of its own: no loaders (so no
``include`` or ``extends`` can reach the shop's files), no extra libraries, and a context of
plain strings only (no model to walk into, so no key can be reached). The HTML email renders
it with autoescape on; the text email and SMS with it off. When the owner has written nothing,
the built-in wording below is used, translated into the order's language.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from orders.followups.models import FollowUpPurpose, MessageTemplate

_HTML = Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=True)
_TEXT = Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=False)

# Variables a template may use, with what the admin's preview shows for a sample order.
VARIABLES = (
    "order_no",
    "product",
    "order_url",
    "buyer_name",
    "shop_name",
    "survey_url",
    "video_url",
    "recommendations",
)


def default_wording(purpose: str) -> tuple[str, str]:
    """The built-in subject and body of ``purpose``, in the active language."""
    wording = {
        FollowUpPurpose.KEY_GUIDE: (
            _("Where to find your {{ product }} key"),
            _(
                "Your key for order {{ order_no }} is ready. Open your order page to see and "
                "copy it:\n{{ order_url }}\n\nWe also emailed it: if you cannot find that "
                "email, look in your spam or junk folder."
            ),
        ),
        FollowUpPurpose.HOW_TO: (
            _("How to use your {{ product }}"),
            _("Here is how to use {{ product }} from order {{ order_no }}."),
        ),
        FollowUpPurpose.CHECK_IN: (
            _("Is your {{ product }} working?"),
            _(
                "A few days ago you bought {{ product }} (order {{ order_no }}). If anything "
                "does not work, reply from your order page:\n{{ order_url }}"
            ),
        ),
        FollowUpPurpose.RECOMMENDATION: (
            _("Buyers of {{ product }} also bought"),
            _(
                "Buyers of {{ product }} also chose:\n"
                "{% for r in recommendations %}- {{ r.name }}: {{ r.url }}\n{% endfor %}"
            ),
        ),
        FollowUpPurpose.SURVEY: (
            _("How was {{ product }}?"),
            _(
                "How happy are you with {{ product }} (order {{ order_no }})? Two clicks, from "
                "1 to 5:\n{{ survey_url }}"
            ),
        ),
    }
    return wording[FollowUpPurpose(purpose)]


def template_errors(*, subject: str, body: str) -> dict[str, str]:
    """What is wrong with an owner's template, by field; empty when both compile."""
    errors = {}
    for name, source in (("subject", subject), ("body", body)):
        try:
            _TEXT.from_string(source)
        except TemplateSyntaxError as exc:
            errors[name] = str(exc)
    return errors


def variant_for(order_no: str, purpose: str) -> str:
    """``a`` or ``b``: the same for an order every time (a hash of its number and purpose)."""
    digest = hashlib.sha256(f"{order_no}:{purpose}".encode()).digest()
    return "ab"[digest[0] % 2]


def templates_for(*, purpose: str, product_id: int) -> dict[str, MessageTemplate]:
    """The owner's templates for ``purpose`` by variant: the product's own if it has any,
    else the shop's default."""
    rows = list(
        MessageTemplate.objects.filter(
            Q(product_id=product_id) | Q(product__isnull=True), purpose=purpose
        )
    )
    own = [row for row in rows if row.product_id == product_id]
    return {row.variant: row for row in (own or rows)}


def choose_variant(*, order_no: str, purpose: str, product_id: int) -> str:
    """ "" when no A/B test runs for this product and purpose, else the order's half."""
    if MessageTemplate.Variant.B not in templates_for(purpose=purpose, product_id=product_id):
        return ""
    return variant_for(order_no, purpose)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def wording_for(*, purpose: str, product_id: int, variant: str) -> tuple[str, str]:
    """The subject and body source this order gets: its variant's, variant A's, or the
    built-in one (variant A is the built-in wording when the owner wrote only a B)."""
    rows = templates_for(purpose=purpose, product_id=product_id)
    row = rows.get(variant or "a") or rows.get("a")
    if row is None:
        return default_wording(purpose)
    return row.subject, row.body


def render_wording(*, subject: str, body: str, context: dict[str, Any]) -> Rendered:
    """Subject and text without escaping, the HTML body with it. A template that stopped
    compiling (edited outside the admin) raises ``TemplateSyntaxError``."""
    return Rendered(
        subject=" ".join(
            _TEXT.from_string(subject).render(Context(context, autoescape=False)).split()
        )[:200],
        text=_TEXT.from_string(body).render(Context(context, autoescape=False)).strip(),
        # Escaped by the engine: marked safe again after strip(), which drops the mark.
        html=mark_safe(_HTML.from_string(body).render(Context(context, autoescape=True)).strip()),  # noqa: S308
    )


def render_follow_up(
    *, purpose: str, product_id: int, variant: str, context: dict[str, Any]
) -> Rendered:
    subject, body = wording_for(purpose=purpose, product_id=product_id, variant=variant)
    try:
        return render_wording(subject=subject, body=body, context=context)
    except TemplateSyntaxError:
        subject, body = default_wording(purpose)
        return render_wording(subject=subject, body=body, context=context)
