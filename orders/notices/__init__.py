"""The owner hears about the shop: new orders, buyers not reached on any channel, backorders
and holds, by email and by IM (Telegram, WeCom, DingTalk, Feishu, Bark, any URL).

**Opt-in.** Nothing is sent until the owner adds a destination (``OwnerNotifier``, in the
admin under Orders → Owner notifications) and ticks the events it wants.

**Written with the event.** The status change (``orders.transitions``: paid, backordered,
on hold) or the outbox giving up on the buyer's last channel (``orders.outbox.dispatch``)
writes a ``PendingNotice`` in its own transaction (``orders.notices.record``): if it commits,
the owner will hear of it, whatever Redis or the workers do next.

**Batched.** A pass (``orders.notices.batching``, run by every outbox dispatch and sweep)
moves pending notices into each destination's open batch, which closes ``batch_seconds``
(60 by default) after its first event: a flood of 500 orders in a minute is one message
with the counts, the first lines of each kind and links to the admin.

**Sent through the outbox** (``orders.outbox``) as a message of purpose ``owner_alert`` on
the destination's channel (``orders.notices.channels``): retried with backoff, every attempt
recorded, its real state shown on the destination in the admin.
"""
