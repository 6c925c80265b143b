"""Usage read back from hourly rollups, bucketed by hour, day or month (UTC)."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.customers.models import Instance
from meterplane.customers.service import get_customer, get_instance
from meterplane.kit.errors import InvalidInput
from meterplane.kit.quantity import from_scaled
from meterplane.kit.time import add_months, day_floor, hour_floor, month_floor
from meterplane.metering.dimensions import (
    PRESET_KEYS,
    UNITS,
    CustomDimension,
    custom_dimensions,
)
from meterplane.metering.models import HourlyCustomUsage, HourlyUsage
from meterplane.metering.schemas import Granularity, UsageBucket, UsageReport

MAX_HOURLY_BUCKETS = 24 * 400

_FLOORS: dict[str, Callable[[datetime], datetime]] = {
    "hour": hour_floor,
    "day": day_floor,
    "month": month_floor,
}
_STEPS: dict[str, Callable[[datetime], datetime]] = {
    "hour": lambda start: start + timedelta(hours=1),
    "day": lambda start: start + timedelta(days=1),
    "month": lambda start: add_months(start, 1),
}


def usage_report(
    session: Session,
    provider_id: str,
    *,
    customer_id: str | None,
    instance_id: str | None,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    dimension: str | None,
) -> UsageReport:
    """Unit-hours per bucket for one customer (all its instances) or one instance."""
    if (customer_id is None) == (instance_id is None):
        raise InvalidInput("give exactly one of customer_id or instance_id", code="invalid_filter")
    if start >= end:
        raise InvalidInput("'from' must be before 'to'", code="invalid_range")
    if granularity == "hour" and end - start > timedelta(hours=MAX_HOURLY_BUCKETS):
        raise InvalidInput(
            f"hourly granularity is limited to {MAX_HOURLY_BUCKETS} hours; use day or month",
            code="range_too_large",
        )
    custom = custom_dimensions(session.connection(), provider_id)
    units = {**UNITS, **{d.key: d.unit for d in custom}}
    if dimension is not None and dimension not in units:
        raise InvalidInput(f"unknown dimension '{dimension}'", code="unknown_dimension")
    dimensions = (dimension,) if dimension else tuple(units)

    scope: Any
    if customer_id is not None:
        get_customer(session, provider_id, customer_id)
        scope = Instance.customer_id == customer_id
    else:
        assert instance_id is not None
        scope = Instance.pk == get_instance(session, provider_id, instance_id).pk

    hourly = hourly_totals(
        session, provider_id, scope, start=start, end=end, keys=dimensions, custom=custom
    )
    buckets = _bucket(hourly, start, end, granularity, dimensions)
    totals = {key: from_scaled(sum(b[key] for _, _, b in buckets)) for key in dimensions}
    return UsageReport(
        customer_id=customer_id,
        instance_id=instance_id,
        start=start,
        end=end,
        granularity=granularity,
        units={key: f"{units[key]}-hours" for key in dimensions},
        data=[
            UsageBucket(
                start=b_start,
                end=b_end,
                quantities={key: from_scaled(values[key]) for key in dimensions},
            )
            for b_start, b_end, values in buckets
        ],
        totals=totals,
    )


def hourly_totals(
    session: Session,
    provider_id: str,
    instance_filter: Any,
    *,
    start: datetime,
    end: datetime,
    keys: Sequence[str] = PRESET_KEYS,
    custom: Sequence[CustomDimension] = (),
) -> list[tuple[datetime, dict[str, int]]]:
    """Scaled unit-hours per hour, summed over the instances the filter selects.

    ``keys`` may name preset and custom dimensions; ``custom`` describes the latter. A custom
    dimension without a value in an hour counts 0 there, as a preset column of an hour would.
    """
    preset = [key for key in keys if key in UNITS]
    wanted = {d.id: d.key for d in custom if d.key in keys}
    per_hour: dict[datetime, dict[str, int]] = {}
    if preset:
        columns = [func.sum(getattr(HourlyUsage, key)).label(key) for key in preset]
        rows = session.execute(
            select(HourlyUsage.hour_start, *columns)
            .join(Instance, Instance.pk == HourlyUsage.instance_pk)
            .where(
                Instance.provider_id == provider_id,
                HourlyUsage.provider_id == provider_id,
                instance_filter,
                HourlyUsage.hour_start >= start,
                HourlyUsage.hour_start < end,
            )
            .group_by(HourlyUsage.hour_start)
        )
        for row in rows:
            held = per_hour.setdefault(row.hour_start, dict.fromkeys(keys, 0))
            for key in preset:
                held[key] = int(getattr(row, key))
    if wanted:
        c = HourlyCustomUsage
        rows = session.execute(
            select(c.hour_start, c.dimension_id, func.sum(c.value).label("value"))
            .join(Instance, Instance.pk == c.instance_pk)
            .where(
                Instance.provider_id == provider_id,
                c.provider_id == provider_id,
                c.dimension_id.in_(list(wanted)),
                instance_filter,
                c.hour_start >= start,
                c.hour_start < end,
            )
            .group_by(c.hour_start, c.dimension_id)
        )
        for row in rows:
            held = per_hour.setdefault(row.hour_start, dict.fromkeys(keys, 0))
            held[wanted[row.dimension_id]] = int(row.value)
    return sorted(per_hour.items())


def _bucket(
    hourly: list[tuple[datetime, dict[str, int]]],
    start: datetime,
    end: datetime,
    granularity: str,
    keys: Sequence[str],
) -> list[tuple[datetime, datetime, dict[str, int]]]:
    floor, step = _FLOORS[granularity], _STEPS[granularity]
    buckets: list[tuple[datetime, datetime, dict[str, int]]] = []
    cursor = floor(start)
    while cursor < end:
        nxt = step(cursor)
        buckets.append((max(cursor, start), min(nxt, end), dict.fromkeys(keys, 0)))
        cursor = nxt
    index = 0
    for hour, values in hourly:
        while buckets[index][1] <= hour:
            index += 1
        target = buckets[index][2]
        for key in keys:
            target[key] += values[key]
    return buckets
