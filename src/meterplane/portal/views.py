"""What a signed-in customer may see: its own issued invoices, usage series and instances.

Every function takes the provider and the customer of the portal session and filters by both:
another customer's (or provider's) invoice id is simply not found.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.customers.models import Instance
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import FINAL_CONTENT, OPEN_FOR_PAYMENT
from meterplane.invoicing.upcoming import upcoming_invoice
from meterplane.kit.errors import NotFound
from meterplane.kit.time import day_floor, hour_floor, month_floor
from meterplane.metering.dimensions import PRESET_DIMENSIONS, custom_dimensions
from meterplane.metering.queries import usage_report

# Issued and later: a customer never sees drafts or invoices waiting for the provider's review.
VISIBLE_STATUSES = frozenset(FINAL_CONTENT)
Range = Literal["48h", "month"]


def visible_invoice(
    session: Session, provider_id: str, customer_id: str, invoice_id: str
) -> Invoice:
    invoice = session.scalar(
        select(Invoice).where(
            Invoice.provider_id == provider_id,
            Invoice.customer_id == customer_id,
            Invoice.id == invoice_id,
            Invoice.status.in_(VISIBLE_STATUSES),
        )
    )
    if invoice is None:
        raise NotFound(
            "There is no such invoice in your account. Check the link, or find your invoices "
            "in the list.",
            code="invoice_not_found",
        )
    return invoice


def customer_invoices(session: Session, provider_id: str, customer_id: str) -> Sequence[Invoice]:
    """The customer's issued-or-later invoices, newest period first."""
    return session.scalars(
        select(Invoice)
        .where(
            Invoice.provider_id == provider_id,
            Invoice.customer_id == customer_id,
            Invoice.status.in_(VISIBLE_STATUSES),
        )
        .order_by(Invoice.period.desc(), Invoice.issued_at.desc(), Invoice.id)
    ).all()


def open_invoices(invoices: Sequence[Invoice]) -> list[Invoice]:
    return [i for i in invoices if i.status in OPEN_FOR_PAYMENT and i.total > 0]


def range_bounds(which: Range, now: datetime) -> tuple[datetime, datetime, Literal["hour", "day"]]:
    """The last 48 hours by hour (the current hour included), or this month by day."""
    if which == "48h":
        end = hour_floor(now) + timedelta(hours=1)
        return end - timedelta(hours=48), end, "hour"
    return month_floor(now), day_floor(now) + timedelta(days=1), "day"


def dimension_names(session: Session, provider_id: str) -> dict[str, tuple[str, str]]:
    """Key → (display name, unit) of the preset and the provider's custom dimensions."""
    names = {d.key: (d.display_name, d.unit) for d in PRESET_DIMENSIONS}
    for custom in custom_dimensions(session.connection(), provider_id):
        names[custom.key] = (custom.display_name, custom.unit)
    return names


def usage_series(
    session: Session, provider_id: str, customer_id: str, which: Range, *, now: datetime
) -> dict[str, Any]:
    """Chart data: one series per dimension with usage in the range, straight from usage_report."""
    start, end, granularity = range_bounds(which, now)
    report = usage_report(
        session,
        provider_id,
        customer_id=customer_id,
        instance_id=None,
        start=start,
        end=end,
        granularity=granularity,
        dimension=None,
    )
    names = dimension_names(session, provider_id)
    shown = [key for key, total in report.totals.items() if total != 0] or [
        key for key in ("cpu_cores", "memory_gib", "storage_gib") if key in report.totals
    ]
    return {
        "range": which,
        "granularity": granularity,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "labels": [bucket.start.isoformat() for bucket in report.data],
        "dimensions": [
            {
                "key": key,
                "name": names.get(key, (key, ""))[0],
                "unit": report.units[key],
                "total": format(report.totals[key], "f"),
                "values": [format(bucket.quantities[key], "f") for bucket in report.data],
            }
            for key in shown
        ],
    }


@dataclass
class InstanceRow:
    instance_id: str
    cloud: str
    region: str
    status: str
    quantities: dict[str, Decimal] = field(default_factory=dict)
    amount: Decimal = Decimal(0)


@dataclass
class Estimate:
    currency: str | None
    subtotal: Decimal
    period_start: datetime
    period_end: datetime
    usage_through: datetime
    lines: list[Any]
    instances: list[InstanceRow]
    dimensions: list[tuple[str, str, str]]  # key, name, unit
    names: dict[str, tuple[str, str]]


def month_estimate(
    session: Session, provider_id: str, customer_id: str, *, now: datetime
) -> Estimate:
    """The month-to-date estimate (priced like the invoice) and a row per instance."""
    upcoming = upcoming_invoice(session, provider_id, customer_id, now=now)
    instances = session.scalars(
        select(Instance)
        .where(Instance.provider_id == provider_id, Instance.customer_id == customer_id)
        .order_by(Instance.created_at, Instance.id)
    ).all()
    rows = {
        i.id: InstanceRow(i.id, i.cloud, i.region, str(i.status))
        for i in instances
        if i.terminated_at is None or i.terminated_at >= upcoming.period_start
    }
    keys: list[str] = []
    for line in upcoming.instances:
        row = rows.setdefault(
            line.instance_id, InstanceRow(line.instance_id, line.cloud, line.region, "terminated")
        )
        row.quantities[line.dimension] = (
            row.quantities.get(line.dimension, Decimal(0)) + line.quantity
        )
        row.amount += line.amount
        if line.dimension not in keys:
            keys.append(line.dimension)
    names = dimension_names(session, provider_id)
    units = {line.dimension: line.unit for line in upcoming.lines}
    return Estimate(
        currency=upcoming.currency,
        subtotal=upcoming.subtotal,
        period_start=upcoming.period_start,
        period_end=upcoming.period_end,
        usage_through=upcoming.usage_through,
        lines=list(upcoming.lines),
        instances=list(rows.values()),
        dimensions=[
            (key, names.get(key, (key, ""))[0], units.get(key, names.get(key, ("", ""))[1]))
            for key in keys
        ],
        names=names,
    )
