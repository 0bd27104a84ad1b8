"""How a channel says a message cannot go out."""

from __future__ import annotations


class PermanentFailure(Exception):
    """Retrying cannot help (no recipient, a refused address or number, nothing to send):
    the channel gives up at once and the message moves on to its next channel. Any other
    exception from a channel is taken as passing, and retried with backoff."""


class NoLongerWanted(Exception):
    """The message must not reach its reader any more (a follow-up whose buyer unsubscribed
    after it was queued): it ends ``skipped`` with this reason, and unlike a
    ``PermanentFailure`` it is not handed to the next channel, which would reach the same
    reader."""
