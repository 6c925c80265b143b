from decimal import Decimal

import pytest

from meterplane.kit.decimals import strip_zeros
from meterplane.kit.errors import InvalidInput
from meterplane.kit.money import minor_units, round_money, validate_currency
from meterplane.kit.quantity import from_scaled, to_scaled


def test_quantities_round_trip_exactly() -> None:
    for text in ("0", "0.000000001", "7.5", "999999.999999999", "1000000"):
        assert from_scaled(to_scaled(Decimal(text))) == Decimal(text)
    with pytest.raises(ValueError, match="decimal places"):
        to_scaled(Decimal("0.0000000001"))


def test_strip_zeros_never_uses_an_exponent() -> None:
    assert format(strip_zeros(Decimal("100.000")), "f") == "100"
    assert str(strip_zeros(Decimal("100.000"))) == "100"
    assert str(strip_zeros(Decimal("12.500"))) == "12.5"


def test_currency_table_and_half_up_rounding() -> None:
    assert validate_currency(" eur ") == "EUR"
    assert (minor_units("USD"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)
    assert round_money(Decimal("0.125"), "USD") == Decimal("0.13")
    assert round_money(Decimal("2.5"), "JPY") == Decimal("3")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")
    with pytest.raises(InvalidInput):
        validate_currency("XXX")
