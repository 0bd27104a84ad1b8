"""After the sale: the "where to find your key" guide and the owner's follow-ups.

**Scheduled in the delivery transaction.** ``followups_schedule`` writes one ``FollowUp`` row
per purpose (the five-minute key guide, the how-to, the check-in, the recommendation, the
survey) with its due time, in one ``INSERT``, under a unique (order, purpose) constraint: a
replayed delivery cannot schedule a second one, so each goes out at most once per order.

**Decided when due.** A periodic task (``orders.tasks.send_due_follow_ups``) reads due rows on
a partial index (``state = scheduled``), locks them ``SKIP LOCKED`` and, per row, either skips
it with a reason (refunded, unsubscribed, the order page opened since delivery, switched off
for the product, nothing to say) or writes its outbox message — in the transaction that
marks the row done. The owner's settings are read then, not at delivery, so switching a
check-in off stops the ones not yet sent.

**Sent by the outbox**, down the buyer's chain like any message; rendered at send time from
the owner's template (``orders.followups.templates``). Follow-up emails carry RFC 8058's
one-click unsubscribe headers; the key guide is transactional and does not. The unsubscribe
is checked again when the message is rendered, so one that arrives after the row was queued
still stops it: the message ends ``skipped`` and goes by no other channel.
"""
