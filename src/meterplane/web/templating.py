"""The Jinja2 environment of the console and the portal, with money, quantity and date filters."""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel.numbers import format_currency, format_decimal

from meterplane.kit.money import minor_units
from meterplane.metering.dimensions import PRESET_DIMENSIONS

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_LOCALE = "en_US"


def money(
    amount: Decimal | int | str | None, currency: str | None, locale: str = DEFAULT_LOCALE
) -> str:
    """``Decimal('1234.5'), 'USD'`` → ``$1,234.50``; the currency's own minor unit."""
    if amount is None or not currency:
        return "—"
    value = Decimal(str(amount))
    digits = minor_units(currency)
    pattern = None if digits == 2 else f"¤#,##0{'.' + '0' * digits if digits else ''}"
    return str(
        format_currency(value, currency, format=pattern, locale=locale, currency_digits=digits == 2)
    )


def minor_money(amount: int | None, currency: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """Integer minor units (cents) → formatted money."""
    if amount is None or not currency:
        return "—"
    return money(Decimal(amount).scaleb(-minor_units(currency)), currency, locale)


def quantity(
    value: Decimal | int | str | None, locale: str = DEFAULT_LOCALE, places: int = 3
) -> str:
    """A usage quantity with grouping and at most ``places`` decimals: ``12,345.678``."""
    if value is None:
        return "—"
    number = Decimal(str(value))
    exponent = Decimal(1).scaleb(-places)
    rounded = number.quantize(exponent) if number != number.to_integral() else number
    return str(format_decimal(rounded, format=f"#,##0.{'#' * places}", locale=locale))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def date(moment: datetime | None) -> str:
    """``2026-10-20``; an ISO date reads the same everywhere."""
    return "—" if moment is None else _utc(moment).strftime("%Y-%m-%d")


def date_time(moment: datetime | None) -> str:
    """``2026-10-20 12:00 UTC``."""
    return "—" if moment is None else _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def humanize(text: str | None) -> str:
    """``payment_failed`` → ``Payment failed``."""
    return "" if not text else text.replace("_", " ").capitalize()


_PRESET_NAMES = {d.key: d.display_name for d in PRESET_DIMENSIONS}


def dimension_name(key: str) -> str:
    """``cpu_cores`` → ``CPU cores``; a custom key is humanized."""
    return _PRESET_NAMES.get(key) or humanize(key)


def install_filters(env: jinja2.Environment) -> None:
    env.filters.update(
        money=money,
        minor_money=minor_money,
        quantity=quantity,
        date=date,
        datetime=date_time,
        humanize=humanize,
        dimension_name=dimension_name,
    )


@lru_cache(maxsize=16)
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_filters(env)
    return env


def templates(folders: Sequence[Path] = ()) -> jinja2.Environment:
    """The environment searching ``folders`` first, then the shared ``web/templates``."""
    return _environment(tuple(str(folder) for folder in folders))


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(context)
