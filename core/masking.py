"""Buyer emails as a non-owner sees them in the admin: masked, on the server.

An order's number and its buyer's email together are what the public lookup asks before it
returns the keys (contract §4), so only the owner may see both. Everyone else gets
``v•••@e•••.com``: enough to tell two buyers apart on the telephone, too little to type into the
lookup. Masking happens before the page is rendered (never CSS): the full address is not in
the response at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.roles import is_owner

MASK = "•••"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*", re.UNICODE)


def mask_email(email: str) -> str:
    """``victim.buyer@example.com`` → ``v•••@e•••.com``; an empty value stays empty."""
    email = (email or "").strip()
    if not email:
        return ""
    local, at, domain = email.rpartition("@")
    if not at:
        return f"{email[:1]}{MASK}"
    host, dot, tld = domain.rpartition(".")
    masked_domain = f"{host[:1]}{MASK}.{tld}" if dot else f"{domain[:1]}{MASK}"
    return f"{local[:1]}{MASK}@{masked_domain}"


def mask_recipient(recipient: str) -> str:
    """An email masked like ``mask_email``; a phone number down to its last four digits; a
    URL (the owner's own callback) as it is."""
    value = (recipient or "").strip()
    if "@" in value:
        return mask_email(value)
    if value.startswith("+") or value.isdigit():
        return "•••" + value[-4:] if len(value) > 4 else "•••"
    return value


def mask_emails_in(text: str) -> str:
    """``text`` with every email address in it masked (history notes, results, reasons)."""
    return _EMAIL.sub(lambda match: mask_email(match.group(0)), text or "")


def may_see_buyer_emails(user: Any) -> bool:
    return is_owner(user)


def buyer_email_for(user: Any, email: str) -> str:
    """The email as ``user`` may see it."""
    return email if may_see_buyer_emails(user) else mask_email(email)


def buyer_text_for(user: Any, text: str) -> str:
    """Free text (which may quote an email) as ``user`` may see it."""
    return text if may_see_buyer_emails(user) else mask_emails_in(text)


def shown_to(user: Any, names: Sequence[str], masked: Mapping[str, str]) -> list[str]:
    """An admin's field or column names for ``user``: unless ``user`` is the owner, each name
    in ``masked`` is replaced by the display method that shows it masked (or hidden)."""
    if may_see_buyer_emails(user):
        return list(names)
    return [masked.get(name, name) for name in names]
