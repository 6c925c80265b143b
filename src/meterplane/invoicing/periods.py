"""Billing periods: calendar months in UTC (DESIGN rule 7), named "YYYY-MM"."""

import re
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.invoicing.models import BillingPeriod
from meterplane.kit.errors import Conflict, InvalidInput
from meterplane.kit.time import add_months, month_floor

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``"2026-10"`` → [2026-10-01T00:00Z, 2026-11-01T00:00Z)."""
    match = _PERIOD.match(period)
    if match is None:
        raise InvalidInput(f"period must look like 2026-10, not {period!r}", code="invalid_period")
    start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
    return start, add_months(start, 1)


def period_of(moment: datetime) -> str:
    return month_floor(moment).strftime("%Y-%m")


def previous_period(moment: datetime) -> str:
    return period_of(add_months(month_floor(moment), -1))


def closed_through(session: Session, provider_id: str) -> datetime | None:
    """End of the provider's latest closed period: prices before it can no longer change."""
    end: datetime | None = session.scalar(
        select(func.max(BillingPeriod.end)).where(
            BillingPeriod.provider_id == provider_id, BillingPeriod.closed_at.is_not(None)
        )
    )
    return end


def ensure_open(session: Session, provider_id: str, moment: datetime, what: str) -> None:
    """Refuse a pricing change that would reach into an already closed (invoiced) period."""
    through = closed_through(session, provider_id)
    if through is not None and moment < through:
        raise Conflict(
            f"{what} {moment.isoformat()} lies in a closed billing period (closed through "
            f"{through.isoformat()}); late corrections are billed as adjustments instead",
            code="period_closed",
            closed_through=through.isoformat(),
        )
