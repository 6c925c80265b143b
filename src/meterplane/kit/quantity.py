"""Usage quantities are stored as integers of nano-units: exact, and fast to sum in any database."""

from decimal import Decimal

from meterplane.kit.decimals import strip_zeros

QUANTITY_DECIMALS = 9
QUANTITY_SCALE = 10**QUANTITY_DECIMALS
# Keeps a sum over nodes and over the instances of one hour far inside a signed 64-bit integer.
MAX_SAMPLE_VALUE = Decimal(1_000_000)


def to_scaled(value: Decimal) -> int:
    """Exact conversion; callers have already limited the value to QUANTITY_DECIMALS places."""
    scaled = value.scaleb(QUANTITY_DECIMALS)
    as_int = int(scaled)
    if as_int != scaled:
        raise ValueError(f"{value} has more than {QUANTITY_DECIMALS} decimal places")
    return as_int


def from_scaled(scaled: int) -> Decimal:
    return strip_zeros(Decimal(scaled).scaleb(-QUANTITY_DECIMALS))
