"""After the sale: the buyer's tickets and the owner's answers to them (a reply, a replaced key,
a refund), "my orders" by email, and "notify me when it is back".

Every message here goes through the outbox (``orders.outbox``), written in the transaction that
causes it. What must happen once is a database rule: one replacement per sold key
(``KeyReplacement.old_key`` is unique), one restock notice per subscription (the outbox's
unique idempotency key, and the subscription closed in the same transaction).
"""
