"""The points where checkout and payment ask risk control for a decision.

``orders`` calls these at fixed places; the rules engine (issue #4) decides. Until rules exist
every answer is "allow", so checkout and delivery behave exactly as without risk control.

- ``throttle_checkout``: before any work, per client IP (raises ``RateLimited``).
- ``screen_checkout``: inside the checkout transaction, after the buyer's advisory locks, so
  counts of recent orders are exact under concurrency (raises ``Blocked``).
- ``checkout_screened``: the order now exists (same transaction): record decisions against it.
- ``review_reason_for_payment``: in the payment transaction, before delivery; a reason puts the
  paid order ``on_hold`` for the owner instead of delivering.
- ``webhook_signature_failed``: a forged or stale webhook arrived (for alerts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckoutContext:
    product_id: int
    quantity: int
    amount: int
    email: str
    client_ip: str | None


def throttle_checkout(*, client_ip: str | None) -> None:
    return None


def screen_checkout(*, ctx: CheckoutContext) -> None:
    return None


def checkout_screened(*, order, ctx: CheckoutContext) -> None:
    return None


def review_reason_for_payment(*, order) -> str | None:
    return None


def webhook_signature_failed(*, client_ip: str | None) -> None:
    return None
