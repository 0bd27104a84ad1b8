"""A small reader of gettext ``.po`` files: enough to compare catalogues in tests, no polib."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.msgctxt, self.msgid, self.msgid_plural)


def read_po(path: Path) -> list[Entry]:
    """Every entry of the catalogue but the header, in file order."""
    entries: list[Entry] = []
    entry = Entry()
    target: str | None = None

    def flush() -> None:
        nonlocal entry, target
        if entry.msgid or entry.msgstrs:
            entries.append(entry)
        entry, target = Entry(), None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.startswith('"'):
            _append(entry, target, ast.literal_eval(line))
            continue
        target = keyword
        _append(entry, target, ast.literal_eval(rest), new=True)
    flush()
    return [e for e in entries if e.msgid and not e.obsolete]


def _append(entry: Entry, target: str | None, text: str, *, new: bool = False) -> None:
    if target == "msgid":
        entry.msgid += text
    elif target == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    elif target == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    elif target is not None and target.startswith("msgstr"):
        if new:
            entry.msgstrs.append(text)
        else:
            entry.msgstrs[-1] += text


def compile_stale_catalogues(locale_dir: Path) -> None:
    """Build each ``.mo`` older than its ``.po`` (``make test`` did it; a bare pytest not)."""
    import subprocess

    for po in locale_dir.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run(["msgfmt", "--check", "-o", str(mo), str(po)], check=True)
