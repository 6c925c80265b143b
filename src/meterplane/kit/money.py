"""Currencies and the one rounding rule for money (DESIGN rule 6)."""

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision, list_currencies

from meterplane.kit.errors import InvalidInput

PRICE_DECIMALS = 12
# Currencies babel knows but nobody invoices in: funds, metals, testing codes.
_NOT_INVOICEABLE = {"XAU", "XAG", "XPD", "XPT", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XSU"}
_ISO_CURRENCIES = frozenset(list_currencies()) - _NOT_INVOICEABLE


def validate_currency(code: str) -> str:
    upper = code.strip().upper()
    if upper not in _ISO_CURRENCIES:
        raise InvalidInput(
            f"unknown currency '{code}' (ISO 4217 code expected)", code="unknown_currency"
        )
    return upper


def minor_units(currency: str) -> int:
    return int(get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit: USD 2 places, JPY 0, KWD 3."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)
