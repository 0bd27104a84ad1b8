"""Money crosses the boundary as decimal strings; inside it is integer minor units."""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 currencies with no minor unit (Stripe's "zero-decimal currencies").
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)


def exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL else 2


def to_decimal_string(minor: int, currency: str) -> str:
    """``990, "USD"`` → ``"9.90"``; ``500, "JPY"`` → ``"500"``."""
    places = exponent(currency)
    return str((Decimal(minor) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places)))
