"""Sections of docs/benchmarks.md that belong to one benchmark each.

``bench/load.py`` writes the whole page; other benchmarks (``bench/reports.py``) own a section
between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``. Each writer replaces only its own
part, and ``keep_sections`` carries the others over when load.py rewrites the page.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- (?P<name>[a-z0-9-]+):start -->.*?<!-- (?P=name):end -->\n?", re.S)


def marked(name: str, body: str) -> str:
    return f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->\n"


def sections(text: str) -> dict[str, str]:
    return {m["name"]: m[0] for m in _SECTION.finditer(text)}


def keep_sections(old: str, new: str) -> str:
    """``new`` with every marked section of ``old`` that ``new`` does not have, appended."""
    have = sections(new)
    kept = [block for name, block in sections(old).items() if name not in have]
    if not kept:
        return new
    return new.rstrip() + "\n\n" + "\n".join(block.rstrip() + "\n" for block in kept)


def write_section(path: Path, name: str, body: str) -> None:
    """Replace section ``name`` of the file at ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else ""
    block = marked(name, body)
    if name in sections(text):
        text = _SECTION.sub(lambda m: block if m["name"] == name else m[0], text)
    else:
        text = text.rstrip() + "\n\n" + block if text else block
    path.write_text(text)
