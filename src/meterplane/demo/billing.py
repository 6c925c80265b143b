"""The demo's billing cycle: the same close and approval the worker and the console run."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.invoicing import close as closing
from meterplane.invoicing import service as invoices
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.periods import period_bounds, previous_period
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import transaction
from meterplane.tenancy.models import Provider
from meterplane.tenancy.profile import update_profile

PROFILE = {
    "legal_name": "Demo Cloud Inc.",
    "address": "500 Market Street, Suite 400\nSan Francisco, CA 94105\nUnited States",
    "tax_id": "US 94-1234567",
    "support_email": "billing@demo-cloud.example",
}


@dataclass(frozen=True)
class DemoBilling:
    period: str | None
    issued: int
    pending: int


def run_billing_cycle(
    factory: sessionmaker[Session], provider_id: str, *, now: datetime
) -> DemoBilling:
    """Close last month and approve every other invoice, so both lists have something."""
    with transaction(factory) as session:
        provider = session.get_one(Provider, provider_id)
        if provider.legal_name is None:
            update_profile(session, provider_id, actor="demo", now=now, **PROFILE)
        created_at = provider.created_at
    period = previous_period(now)
    _start, end = period_bounds(period)
    if end <= created_at:
        return DemoBilling(period=None, issued=0, pending=0)
    closing.close_period(factory, provider_id, period, now=now)
    with transaction(factory) as session:
        pending = list(
            session.scalars(
                select(Invoice.id)
                .where(
                    Invoice.provider_id == provider_id,
                    Invoice.period == period,
                    Invoice.status == InvoiceStatus.pending_approval,
                )
                .order_by(Invoice.customer_id)
            )
        )
        already_issued = session.scalar(
            select(Invoice.id)
            .where(
                Invoice.provider_id == provider_id,
                Invoice.period == period,
                Invoice.status != InvoiceStatus.pending_approval,
            )
            .limit(1)
        )
    # Approve half the first time only; later runs leave the review queue to the person.
    to_approve = [] if already_issued else pending[::2]
    for invoice_id in to_approve:
        with transaction(factory) as session:
            invoices.approve(session, provider_id, invoice_id, actor="demo", now=now)
    with transaction(factory) as session:
        statuses = list(
            session.scalars(
                select(Invoice.status).where(
                    Invoice.provider_id == provider_id, Invoice.period == period
                )
            )
        )
    pending_count = sum(1 for s in statuses if s == InvoiceStatus.pending_approval)
    return DemoBilling(period=period, issued=len(statuses) - pending_count, pending=pending_count)
