"""Owner-entered rich text (product descriptions), sanitised with nh3 wherever it is shown.

The owner may format a description with a small set of tags: paragraphs, emphasis, lists,
small headings, code, links and images. Everything else goes: scripts and styles with their
content, event handlers, ``style`` attributes, ``javascript:``/``data:`` URLs, frames, forms.
Links get ``rel="noopener noreferrer"``; images must come from ``https://`` or from the shop
itself (a path). Sanitising happens on output, not on save, so text that reached the database
any other way (a shell, an import, an older version) is held to the same rule.

A description without block tags is treated as plain text, as descriptions always were: blank
lines separate paragraphs and single newlines break lines.
"""

from __future__ import annotations

import re

import nh3
from django.utils.html import linebreaks
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "b", "em", "i", "u", "s", "small", "code", "pre",
        "blockquote", "ul", "ol", "li", "h3", "h4", "a", "img",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
_BLOCK_TAG = re.compile(r"<(?:p|ul|ol|h3|h4|blockquote|pre|hr)\b", re.IGNORECASE)


def _image_source_allowed(value: str) -> bool:
    value = value.strip()
    return value.lower().startswith("https://") or (
        value.startswith("/") and not value.startswith("//")
    )


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not _image_source_allowed(value):
        return None
    return value


_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes={"https", "http", "mailto"},
    attribute_filter=_attribute_filter,
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitize_html(text: str) -> str:
    """``text`` with only the allowed tags, attributes and URLs left (still a ``str``)."""
    return _cleaner.clean(text or "")


def rich_text(text: str) -> SafeString:
    """``text`` sanitised and ready for a template; plain text gets its paragraphs."""
    clean = sanitize_html(text)
    if not _BLOCK_TAG.search(clean):
        clean = linebreaks(clean, autoescape=False)  # only adds <p> and <br> to safe HTML
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
