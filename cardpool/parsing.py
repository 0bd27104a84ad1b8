"""Turning an uploaded file or pasted text into candidate keys.

One key per line, or a CSV whose header has a ``key`` column (also ``code``, ``card``,
``secret``, ``卡密``). Blank lines and lines too long to be a key are skipped and counted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_KEY_LENGTH = 1000
KEY_COLUMNS = ("key", "code", "card", "secret", "card_key", "卡密")


@dataclass
class ParsedKeys:
    keys: list[str]
    skipped: int


def _clean(lines: Iterable[str]) -> ParsedKeys:
    keys: list[str] = []
    skipped = 0
    for raw in lines:
        key = raw.strip().strip("\ufeff")
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            skipped += 1
            continue
        keys.append(key)
    return ParsedKeys(keys=keys, skipped=skipped)


def _csv_key_column(rows: Iterator[list[str]]) -> int | None:
    header = next(rows, None)
    if header is None:
        return None
    lowered = [cell.strip().strip("\ufeff").lower() for cell in header]
    for name in KEY_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return None


def parse_keys(text: str, *, filename: str = "") -> ParsedKeys:
    """Parse ``text``; CSV when the name ends in ``.csv`` and its header names a key column."""
    if text.endswith("\n"):
        text = text[:-1]
    if filename.lower().endswith(".csv"):
        rows = csv.reader(io.StringIO(text))
        column = _csv_key_column(rows)
        if column is None:
            raise ValueError(
                "The CSV file has no key column: name one 'key' (or code, card, secret)."
            )
        return _clean(row[column] if len(row) > column else "" for row in rows)
    if not text:
        return ParsedKeys(keys=[], skipped=0)
    return _clean(text.split("\n"))
