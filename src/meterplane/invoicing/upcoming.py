"""The month-to-date estimate, priced by the same code as the invoice."""

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from meterplane.customers.service import get_customer
from meterplane.invoicing.rating import rate_customer
from meterplane.invoicing.schemas import InstanceLineOut, LineOut, UpcomingInvoiceOut
from meterplane.kit.time import add_months, hour_floor, month_floor


def upcoming_invoice(
    session: Session, provider_id: str, customer_id: str, *, now: datetime
) -> UpcomingInvoiceOut:
    """Usage of the current period so far (the hour in progress included), priced per hour."""
    get_customer(session, provider_id, customer_id)
    period_start = month_floor(now)
    period_end = add_months(period_start, 1)
    through = min(hour_floor(now) + timedelta(hours=1), period_end)
    rating = rate_customer(session, provider_id, customer_id, start=period_start, end=through)
    return UpcomingInvoiceOut(
        customer_id=customer_id,
        currency=rating.currency,
        period_start=period_start,
        period_end=period_end,
        usage_through=through,
        lines=[LineOut.model_validate(line, from_attributes=True) for line in rating.lines],
        instances=[
            InstanceLineOut.model_validate(line, from_attributes=True) for line in rating.instances
        ],
        subtotal=rating.subtotal,
    )
