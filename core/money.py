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


# ISO 4217 currencies with three decimal places (Stripe follows ISO for these).
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def to_decimal_string(minor: int, currency: str) -> str:
    """``990, "USD"`` → ``"9.90"``; ``500, "JPY"`` → ``"500"``."""
    places = exponent(currency)
    return str((Decimal(minor) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places)))
