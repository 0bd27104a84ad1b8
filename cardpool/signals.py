"""What the card pool tells the rest of the shop. It announces facts; it starts no one's work.

``keys_imported`` is sent once an import that added keys has committed, with ``product_id``
and ``count`` (keys that landed). Orders listens and serves the product's backorders
(``orders.apps``): the pool knows nothing of orders.
"""

from __future__ import annotations

from django.dispatch import Signal

keys_imported = Signal()
