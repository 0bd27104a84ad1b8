"""How a channel says a message cannot go out."""

from __future__ import annotations


class PermanentFailure(Exception):
    """Retrying cannot help (no recipient, a refused address or number, nothing to send):
    the channel gives up at once and the message moves on to its next channel. Any other
    exception from a channel is taken as passing, and retried with backoff."""
