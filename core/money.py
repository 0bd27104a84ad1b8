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


# How a Chinese reader sees the common currencies (CLDR's zh symbols); others keep the ISO code.
ZH_SYMBOLS = {"CNY": "¥", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$"}


def format_money(minor: int, currency: str) -> str:
    """Money as a buyer of the active language reads it, thousands grouped for that language.

    English: ``1,234.50 USD`` (the code after the amount, as the pages always showed it);
    Simplified Chinese: ``¥1,234.50`` for CNY, ``US$9.90`` for USD, else ``9.90 EUR``-style.
    Display only: the API and the database keep decimal strings and minor units.
    """
    from django.utils.formats import number_format

    code = currency.upper()
    prefix, suffix = money_affixes(code)
    amount = number_format(
        Decimal(to_decimal_string(int(minor or 0), code)),
        decimal_pos=exponent(code),
        use_l10n=True,
        force_grouping=True,
    )
    return f"{prefix}{amount}{suffix}"


def money_affixes(currency: str) -> tuple[str, str]:
    """What goes before and after an amount of ``currency`` in the active language, so a
    script can format a total the way ``format_money`` does (the product page's total)."""
    from django.utils.translation import get_language

    code = currency.upper()
    symbol = ZH_SYMBOLS.get(code) if (get_language() or "").startswith("zh") else None
    return (symbol, "") if symbol else ("", f" {code}")
