"""Turning user-supplied prices and hours into exact values, with a specific code per mistake."""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from meterplane.kit.errors import InvalidInput
from meterplane.kit.money import PRICE_DECIMALS


def parse_unit_price(dimension: str, raw: Any) -> Decimal:
    """A unit price per unit-hour: non-negative, at most PRICE_DECIMALS places, finite."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InvalidInput(
            f'price of {dimension} must be a decimal string such as "0.04"',
            code="invalid_price",
            dimension=dimension,
        )
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise InvalidInput(
            f"price of {dimension} is not a number: {raw!r}",
            code="invalid_price",
            dimension=dimension,
        ) from exc
    if not value.is_finite():
        raise InvalidInput(
            f"price of {dimension} must be finite", code="invalid_price", dimension=dimension
        )
    if value < 0:
        raise InvalidInput(
            f"price of {dimension} is negative: {raw}", code="negative_price", dimension=dimension
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PRICE_DECIMALS:
        raise InvalidInput(
            f"price of {dimension} has more than {PRICE_DECIMALS} decimal places: {raw}",
            code="too_many_decimals",
            dimension=dimension,
        )
    if value >= Decimal(10) ** 17:
        raise InvalidInput(
            f"price of {dimension} is too large", code="invalid_price", dimension=dimension
        )
    return value


def parse_prices(raw: dict[str, Any], known_dimensions: set[str]) -> dict[str, Decimal]:
    unknown = sorted(set(raw) - known_dimensions)
    if unknown:
        raise InvalidInput(
            f"unknown dimension(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known_dimensions))}",
            code="unknown_dimension",
        )
    return {key: parse_unit_price(key, value) for key, value in sorted(raw.items())}


def require_hour(moment: datetime, field: str) -> datetime:
    """Prices, overrides and plan changes start on whole hours, the unit usage is billed in."""
    moment = moment.astimezone(UTC)
    if moment.minute or moment.second or moment.microsecond:
        raise InvalidInput(
            f"{field} must be on a whole hour (e.g. 2026-11-01T00:00:00Z), "
            f"not {moment.isoformat()}",
            code="not_on_hour",
        )
    return moment
