"""One buyer, one identity: the spelling of an email address that tricks cannot vary."""

from __future__ import annotations

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_identity(email: str) -> str:
    """``J.Doe+shop@GoogleMail.com`` → ``jdoe@gmail.com``.

    Case and ``+tags`` never change the mailbox; Gmail also ignores dots and answers to both its
    domains. Self-referral checks and the email blocklist compare this form, so a buyer cannot
    slip past either by writing their address differently.
    """
    email = (email or "").strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep or not local:
        return email
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"
