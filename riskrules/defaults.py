"""The risk rules a new shop starts with (seeded by migration 0002). Plain data on purpose:
the migration imports it, so it must never import models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "Blocklist",
        "kind": "blocklist",
        "action": "block",
        "enabled": True,
        "position": 10,
        "note": "Refuses buyers on the blocklist (emails, domains, IPs and ranges).",
    },
    {
        "name": "Same IP + product: more than 3 orders in 10 minutes",
        "kind": "velocity",
        "action": "block",
        "enabled": True,
        "position": 20,
        "key": "ip_product",
        "measure": "orders",
        "limit": 3,
        "window_minutes": 10,
        "note": "Stops a script emptying a product's stock from one network.",
    },
    {
        "name": "Amount over 3× the product's daily average order",
        "kind": "amount_anomaly",
        "action": "hold",
        "enabled": True,
        "position": 30,
        "multiplier": Decimal("3"),
        "baseline_days": 7,
        "min_baseline_orders": 5,
        "floor_amount": 0,
        "note": "Average of the last 7 days' paid orders; silent until 5 exist (new products).",
    },
    {
        "name": "Global quantity cap: more than 50 keys in one order",
        "kind": "quantity_cap",
        "action": "block",
        "enabled": False,
        "position": 40,
        "limit": 50,
    },
    {
        "name": "Disposable email domains",
        "kind": "disposable_email",
        "action": "block",
        "enabled": False,
        "position": 50,
    },
    {
        "name": "Same email: more than 10 orders in an hour",
        "kind": "velocity",
        "action": "flag",
        "enabled": False,
        "position": 60,
        "key": "email",
        "measure": "orders",
        "limit": 10,
        "window_minutes": 60,
    },
]
