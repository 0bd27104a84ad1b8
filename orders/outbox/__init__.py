"""The transactional outbox: every message Kami sends, written first, sent after.

**Written in the transaction that causes it.** The delivery transaction inserts the buyer's
message (and the owner's callback) in one multi-row ``INSERT``; an alert inserts the owner's
email with the alert, and the weekly summary's claim of its week the owner's summary. If the
transaction rolls back there is no message; if it commits the message exists, whatever Redis
or the worker do next. A row holds references and non-secret text only: a delivery's keys are
decrypted from the order when it is sent.

**Sent by a dispatcher** (``orders.outbox.dispatch``): kicked by a task queued after the
commit, and run by the sweeps too (beat, and a thread inside every worker), so a lost kick
delays a message by seconds and loses nothing. Each pass claims due rows with
``SELECT … FOR UPDATE SKIP LOCKED``, marks them ``sending`` with a lease and writes an attempt
row — and commits — *before* anything leaves the process. Then it sends, outside any
transaction, and records the outcome in a second transaction (retried while the database is
briefly unreachable, so a restart between the two does not cause a re-send).

**Exactly what is promised.**

- *Never lost*: a committed row is retried with exponential backoff until its channel gives
  up, then the next channel of its fallback chain gets a row of its own (the product's chain,
  else the shop's default; e.g. email → SMS → site inbox). The order page always shows the
  keys whatever happens here.
- *Skipped, not lost*: a message its renderer finds no longer wanted at send time (a
  follow-up whose buyer unsubscribed since it was queued: ``NoLongerWanted``) ends
  ``skipped``, its attempt says why, and no other channel gets a row.
- *At least once* for email, SMS and the owner's callback; *at most one extra copy per
  crash*: a dispatcher that dies (or loses the database for longer than
  ``KAMI_OUTBOX_RECORD_RETRY_SECONDS``) between the provider accepting a message and the
  outcome being recorded leaves the attempt ``sending``; when its lease lapses the next pass
  marks that attempt ``unknown`` and sends again — once, since that try is itself claimed
  first. No other failure re-sends a message that left.
- Where the channel carries an idempotency key, that extra copy is recognisable as the same
  message: email keeps the same ``Message-ID`` (derived from the row's idempotency key; mail
  clients such as Gmail fold copies with one Message-ID into one), the callback the same
  ``Idempotency-Key`` header (the owner's endpoint answers a repeat with 2xx and ignores
  it). SMS has no such key at the providers: the one channel where a crash in that window
  can show the buyer a second text.
- *Exactly once* for the site inbox: its entry is written in the same transaction that
  marks the message sent, under a unique constraint.
- *One message per (order, purpose, channel, generation)*: a unique constraint, so a
  repeated delivery, a replayed task or two sweeps racing cannot queue a second copy. The
  owner's resend is a new generation, with its own key and Message-ID.
"""
