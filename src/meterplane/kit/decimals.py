"""Decimal helpers shared by money and usage."""

from decimal import Decimal


def strip_zeros(value: Decimal) -> Decimal:
    """``Decimal("12.500")`` → ``12.5`` and ``Decimal("1E+2")`` → ``100``: no exponent in output."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized
