"""Money as integer minor units plus an ISO currency, formatted for the reader's locale with Babel."""

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision
from django.utils import translation


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-get_currency_precision(currency.upper()))


def format_money(amount: int, currency: str, locale: str | None = None) -> str:
    locale = (locale or translation.get_language() or "en").replace("-", "_")
    return _format_money(amount, currency.upper(), locale)


@lru_cache(maxsize=4096, typed=True)
def _format_money(amount: int, currency: str, locale: str) -> str:
    # Babel's formatting is the same for the same figures, and a page shows the same few amounts again and again.
    return format_currency(to_major(amount, currency), currency, locale=locale)


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units (as typed: 12.50) to integer minor units (1250), refusing more decimals than the currency has."""
    precision = get_currency_precision(currency.upper())
    minor = Decimal(amount).scaleb(precision)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency.upper()} has {precision} decimal places")
    return int(minor)
