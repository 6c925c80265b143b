"""Gapless invoice numbers: taken under a row lock in the approving transaction.

A rolled-back approval rolls its number back too, so the sequence never skips.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from meterplane.invoicing.models import NumberSequence
from meterplane.kit.errors import InvalidInput
from meterplane.tenancy.models import Provider

PLACEHOLDERS = {"prefix": "INV", "year": 2026, "month": 1, "seq": 1}


def validate_format(number_format: str) -> str:
    """A format must render and must contain ``{seq...}``, or numbers would repeat."""
    if "{seq" not in number_format:
        raise InvalidInput(
            "the invoice number format must contain {seq}", code="invalid_number_format"
        )
    try:
        number_format.format(**PLACEHOLDERS)
    except (KeyError, ValueError, IndexError) as exc:
        raise InvalidInput(
            f"invalid invoice number format {number_format!r}: {exc}; use {{prefix}}, {{year}}, "
            "{month} and {seq} (e.g. {prefix}-{year}-{seq:06d})",
            code="invalid_number_format",
        ) from exc
    return number_format


def take_number(session: Session, provider: Provider, *, now: datetime) -> str:
    """The next number of the provider's sequence."""
    insert = (
        postgresql.insert
        if session.bind and session.bind.dialect.name == "postgresql"
        else (sqlite.insert)
    )
    session.execute(
        insert(NumberSequence)
        .values(provider_id=provider.id, next_value=1)
        .on_conflict_do_nothing(index_elements=["provider_id"])
    )
    sequence = session.scalars(
        select(NumberSequence)
        .where(NumberSequence.provider_id == provider.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    value = sequence.next_value
    sequence.next_value = value + 1
    return provider.invoice_number_format.format(
        prefix=provider.invoice_prefix, year=now.year, month=now.month, seq=value
    )
