"""What checkout tells risk control about an order it is about to create."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckoutContext:
    product_id: int
    quantity: int
    amount: int
    email: str
    client_ip: str | None
