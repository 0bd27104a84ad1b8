"""The CI check of the translations: no buyer-facing text left untranslated, the committed
catalogue not stale.

Two halves. ``makemessages`` run on a throw-away copy of the source must find exactly the
msgids the committed ``.po`` holds (a string added, changed or removed without ``make
messages`` fails), and every committed entry has a translation that is not fuzzy. And a text
written into a buyer-facing template without ``{% translate %}`` is caught by reading the
templates themselves: what is left after removing tags, variables and translated blocks must
hold no words.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.i18n.po import read_po

BASE = Path(settings.BASE_DIR)
PO = BASE / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SOURCES = ["core", "shop", "orders", "cardpool", "commissions", "riskrules", "analytics"]
# The templates buyers and promoters read (the admin's are the owner's, in English).
BUYER_TEMPLATES = sorted(
    [
        *(BASE / "templates").glob("*.html"),
        *(BASE / "templates" / "shop").glob("*.html"),
        *(BASE / "templates" / "orders").glob("*.html"),
        *(BASE / "templates" / "commissions").glob("*.html"),
        *(BASE / "templates" / "emails").glob("*"),
    ]
)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """``makemessages -l zh_Hans`` over a copy of the sources and templates, merged into a
    copy of the committed catalogue: the catalogue ``make messages`` would write now."""
    root = tmp_path_factory.mktemp("messages")
    skip = shutil.ignore_patterns("__pycache__", "migrations", "*.pyc")
    for name in [*SOURCES, "templates"]:
        shutil.copytree(BASE / name, root / name, ignore=skip)
    (root / PO.relative_to(BASE)).parent.mkdir(parents=True)
    shutil.copy(PO, root / PO.relative_to(BASE))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with settings_override(LOCALE_PATHS=[root / "locale"]):
            call_command("makemessages", locale=["zh_Hans"], no_obsolete=True, verbosity=0)
    finally:
        os.chdir(cwd)
    return root / PO.relative_to(BASE)


def settings_override(**values):
    from django.test import override_settings

    return override_settings(**values)


def test_committed_catalogue_has_every_msgid_makemessages_finds(extracted):
    committed = {entry.key for entry in read_po(PO)}
    current = {entry.key for entry in read_po(extracted)}
    assert current - committed == set(), "new strings: run `make messages` and translate them"
    assert committed - current == set(), "strings no longer used: run `make messages`"


def test_every_committed_entry_is_translated_and_not_fuzzy():
    entries = read_po(PO)
    assert len(entries) > 100
    untranslated = [e.msgid for e in entries if not all(s.strip() for s in e.msgstrs)]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert untranslated == [] and fuzzy == []


def test_the_catalogue_compiles_and_its_placeholders_match():
    # msgfmt --check: the same %(name)s placeholders in msgid and msgstr, a valid header.
    subprocess.run(["msgfmt", "--check", "-o", os.devnull, str(PO)], check=True)


TRANSLATED_BLOCK = re.compile(
    r"{%\s*blocktranslate.*?%}.*?{%\s*endblocktranslate\s*%}|{%\s*translate\s.*?%}", re.S
)
COMMENT = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", re.S)
TAG_OR_VAR = re.compile(r"{%.*?%}|{{.*?}}", re.S)
CODE = re.compile(r"<(script|style|code)\b.*?</\1>", re.S)
VISIBLE_ATTRIBUTE = re.compile(r'\b(?:aria-label|placeholder|title|alt)="([^"]*)"')
HTML_TAG = re.compile(r"<[^>]*>", re.S)
WORD = re.compile(r"[A-Za-z]{2,}")


def untranslated_words(source: str) -> list[str]:
    text = COMMENT.sub(" ", source)
    text = TRANSLATED_BLOCK.sub(" ", text)
    text = TAG_OR_VAR.sub(" ", text)
    text = CODE.sub(" ", text)
    attributes = " ".join(VISIBLE_ATTRIBUTE.findall(text))
    text = HTML_TAG.sub(" ", text) + " " + attributes
    return WORD.findall(text.replace("&nbsp;", " "))


@pytest.mark.parametrize("template", BUYER_TEMPLATES, ids=lambda p: str(p.relative_to(BASE)))
def test_buyer_template_has_no_untranslated_text(template):
    assert untranslated_words(template.read_text(encoding="utf-8")) == []


def test_the_template_check_sees_an_untranslated_text():
    assert untranslated_words('<p class="x">{% translate "Hi" %} Buy now</p>') == ["Buy", "now"]
    assert untranslated_words('<input aria-label="Your link">') == ["Your", "link"]
    assert untranslated_words("{% blocktranslate %}Pay {{ x }}{% endblocktranslate %}") == []
