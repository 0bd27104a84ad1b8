"""The seam where checkout and payment ask risk control, declared by orders.

Orders owns order state; risk control only decides. Orders calls these at fixed places, and
whatever implements them (``riskrules``, registered in ``RiskrulesConfig.ready``) answers with
data or raises one of the ``core.errors`` refusals. Orders writes the order's history itself.
With nothing registered every check passes (``NoRiskControl``), so orders works alone.

- ``throttle_checkout``: before any work, per client IP (raises ``RateLimited``).
- ``screen_checkout``: inside the checkout transaction, after the buyer's advisory locks, so
  counts of recent orders are exact under concurrency (raises ``Blocked``); returns the
  non-blocking ``Decision``s (hold, flag) for the caller to hand back to ``checkout_screened``.
- ``checkout_screened``: the order now exists (same transaction): record the decisions on it.
  Orders then notes each one in the order's history.
- ``checkout_refused``: after a refused checkout rolled back: record the block for the audit.
- ``review_reason_for_payment``: in the payment transaction, before delivery; a reason puts the
  paid order ``on_hold`` for the owner instead of delivering.
- ``webhook_signature_failed``: a forged or stale webhook arrived (for alerts).

``hold`` and ``flag`` are decided at checkout, where velocity is counted exactly, recorded
against the order, and acted on when the payment arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from orders.models import Order


@dataclass(frozen=True)
class CheckoutContext:
    """What checkout tells risk control about an order it is about to create."""

    product_id: int
    quantity: int
    amount: int
    email: str
    client_ip: str | None


HOLD = "hold"
FLAG = "flag"


@dataclass(frozen=True)
class Decision:
    """A non-blocking decision at checkout: ``outcome`` ``"hold"`` (the paid order waits for
    review) or ``"flag"`` (deliver, mark for the owner), why, and the facts behind it.
    ``detail`` is the deciding implementation's own record, handed back to it unchanged."""

    outcome: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)
    detail: Any = field(default=None, compare=False, repr=False)


class RiskControl(Protocol):
    def throttle_checkout(self, *, client_ip: str | None) -> None: ...

    def screen_checkout(self, *, ctx: CheckoutContext) -> list[Decision]: ...

    def checkout_screened(
        self, *, order: Order, ctx: CheckoutContext, decisions: list[Decision]
    ) -> None: ...

    def checkout_refused(self, *, ctx: CheckoutContext, error: Exception) -> None: ...

    def review_reason_for_payment(self, *, order: Order) -> str | None: ...

    def webhook_signature_failed(self, *, client_ip: str | None) -> None: ...


class NoRiskControl:
    """No risk app installed: nothing is throttled, screened, held or alerted."""

    def throttle_checkout(self, *, client_ip: str | None) -> None:
        return None

    def screen_checkout(self, *, ctx: CheckoutContext) -> list[Decision]:
        return []

    def checkout_screened(
        self, *, order: Order, ctx: CheckoutContext, decisions: list[Decision]
    ) -> None:
        return None

    def checkout_refused(self, *, ctx: CheckoutContext, error: Exception) -> None:
        return None

    def review_reason_for_payment(self, *, order: Order) -> str | None:
        return None

    def webhook_signature_failed(self, *, client_ip: str | None) -> None:
        return None


_control: RiskControl = NoRiskControl()


def risk_control_register(control: RiskControl) -> None:
    """Install the risk control orders asks (once, from the implementing app's ``ready``)."""
    global _control
    _control = control


def risk_control() -> RiskControl:
    return _control
