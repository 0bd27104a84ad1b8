"""Kami's shared kernel: what every app uses and no app owns.

- ``core.errors``: domain errors with a stable ``code`` and HTTP status, and ``ErrorOut``, the
  one ``{code, message}`` schema every API router answers errors with.
- ``core.money``: integer minor units inside, decimal strings at the boundary.
- ``core.identity``: the one spelling of an email address that limits and blocklists compare.
- ``core.client_ip``: the client IP that risk rules and rate limits see.
- ``core.ratelimit``: the one rate limiter (checkout, order lookups, API tokens).
- ``core.admin``: admin base classes (read-only records, singleton settings).
- ``core.locks``: locking one row of any model with a plain ``SELECT … FOR UPDATE``.

A plain package, not a Django app: no models, no migrations, no templates. It imports only
Django and django-ninja, never one of Kami's apps, so every app may import it.
"""
