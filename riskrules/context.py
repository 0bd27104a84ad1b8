"""What checkout tells risk control: ``orders.risk.CheckoutContext`` (orders declares the
seam). Kept under this name for the callers that import it from here (bench/)."""

from orders.risk import CheckoutContext

__all__ = ["CheckoutContext"]
