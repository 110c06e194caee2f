"""Money as integer minor units plus an ISO currency, formatted for the reader's locale with Babel."""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from django.utils import translation


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-get_currency_precision(currency.upper()))


def format_money(amount: int, currency: str, locale: str | None = None) -> str:
    locale = (locale or translation.get_language() or "en").replace("-", "_")
    return format_currency(to_major(amount, currency), currency.upper(), locale=locale)
