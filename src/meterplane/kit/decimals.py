"""Decimal helpers shared by money and usage."""

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def strip_zeros(value: Decimal) -> Decimal:
    """``Decimal("12.500")`` → ``12.5`` and ``Decimal("1E+2")`` → ``100``: no exponent in output."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


# A Decimal that leaves the API as a plain decimal string: "0.000000000001", never "1E-12".
DecimalText = Annotated[
    Decimal,
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "decimal", "examples": ["12.5"]}),
]
