"""Owner-entered rich text (product descriptions) is sanitised with nh3 wherever it is shown:
a few formatting tags survive, scripts, handlers and dangerous URLs do not."""

from __future__ import annotations

import pytest

from shop.rich_text import rich_text, sanitize_html
from tests.factories import stock_product
from tests.html_audit import inline_code

PAYLOADS = (
    "<p><strong>Fast</strong> delivery, <em>no</em> waiting.</p>"
    "<ul><li>Region: <code>EU</code></li></ul>"
    '<a href="https://example.com/help" target="_blank">How to redeem</a>'
    '<img src="https://cdn.example.com/box.png" alt="The box" onload="alert(1)">'
    '<img src="/static/box.png" alt="Ours">'
    "<script>alert('script')</script>"
    "<img src=x onerror=\"alert('onerror')\">"
    '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">'
    '<img src="//evil.example/pixel.png">'
    "<a href=\"javascript:alert('js')\">js link</a>"
    '<a href=" JaVaScRiPt:alert(1)">mixed case</a>'
    '<p style="position:fixed" onclick="alert(1)">styled</p>'
    "<style>body { display: none }</style>"
    '<iframe src="https://evil.example/"></iframe>'
    '<form action="https://evil.example/"><input name="card"></form>'
)
DANGEROUS = ("<script", "onerror", "onload", "onclick", "javascript:", "alert(", "<iframe",
             "<form", "<style", "style=", "data:", "evil.example")  # fmt: skip


def test_sanitiser_keeps_formatting_and_removes_every_payload():
    clean = sanitize_html(PAYLOADS)
    for kept in (
        "<strong>Fast</strong>",
        "<em>no</em>",
        "<li>Region: <code>EU</code></li>",
        '<a href="https://example.com/help" rel="noopener noreferrer">How to redeem</a>',
        '<img src="https://cdn.example.com/box.png" alt="The box">',
        '<img src="/static/box.png" alt="Ours">',
    ):
        assert kept in clean, (kept, clean)
    lowered = clean.lower()
    for bad in DANGEROUS:
        assert bad not in lowered, (bad, clean)
    assert 'target="_blank"' not in clean


def test_plain_text_descriptions_keep_their_paragraphs_and_are_escaped():
    html = rich_text("Ten dollars & more.\n\nRedeem under Games → Redeem.\nThen play <3")
    assert html == (
        "<p>Ten dollars &amp; more.</p>\n\n<p>Redeem under Games → Redeem.<br>Then play &lt;3</p>"
    )


@pytest.mark.django_db
@pytest.mark.postgres
def test_product_page_and_api_show_the_sanitised_description(client):
    stock_product(1, slug="rich", description=PAYLOADS)
    page = client.get("/p/rich").content.decode()
    assert "<strong>Fast</strong>" in page and 'rel="noopener noreferrer"' in page
    description = page.split('<div class="description">', 1)[1].split("</div>", 1)[0]
    assert not inline_code(description), inline_code(description)
    for bad in DANGEROUS:
        assert bad not in description.lower(), bad
    api = client.get("/api/v1/products/rich").json()["description"]
    assert api == sanitize_html(PAYLOADS)
    assert "<script" not in api and "onerror" not in api
