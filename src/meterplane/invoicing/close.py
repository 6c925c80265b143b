"""The monthly close, in chunks that each commit: a crash loses at most the chunk in flight,
and a rerun finds what is done (one live invoice per customer and period, enforced by a
unique index) and carries on."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.audit import service as audit
from meterplane.customers.models import Subscription, SubscriptionStatus
from meterplane.invoicing.content import (
    adjustment_candidates,
    build_contents,
    customers_with_usage,
)
from meterplane.invoicing.models import BillingPeriod, Invoice
from meterplane.invoicing.periods import period_bounds
from meterplane.invoicing.service import freeze, get_invoice, new_draft, write_content
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import transaction
from meterplane.kit.errors import Conflict
from meterplane.notifications.service import notify
from meterplane.tenancy.models import Provider, ZeroUsagePolicy

CHUNK_SIZE = 500


@dataclass
class CloseReport:
    period: str
    created: int = 0
    refreshed: int = 0
    frozen: int = 0
    already_closed: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "period": self.period,
            "created": self.created,
            "refreshed": self.refreshed,
            "frozen": self.frozen,
            "already_closed": self.already_closed,
        }


def _lock_period(session: Session, provider_id: str, period: str) -> BillingPeriod:
    """Create the period row if needed and lock it: concurrent closes run one at a time."""
    start, end = period_bounds(period)
    row = session.scalar(
        select(BillingPeriod)
        .where(BillingPeriod.provider_id == provider_id, BillingPeriod.period == period)
        .with_for_update()
    )
    if row is None:
        session.add(BillingPeriod(provider_id=provider_id, period=period, start=start, end=end))
        session.flush()
        row = session.scalars(
            select(BillingPeriod)
            .where(BillingPeriod.provider_id == provider_id, BillingPeriod.period == period)
            .with_for_update()
        ).one()
    return row


def draft_period(
    factory: sessionmaker[Session],
    provider_id: str,
    period: str,
    *,
    now: datetime,
    after_chunk: Callable[[int], None] | None = None,
) -> CloseReport:
    """Create or recompute the period's drafts from the latest usage."""
    report = CloseReport(period)
    start, end = period_bounds(period)
    if end > now:
        raise Conflict(f"period {period} has not ended yet", code="period_not_ended")
    with transaction(factory) as session:
        billing_period = _lock_period(session, provider_id, period)
        if billing_period.closed_at is not None:
            report.already_closed = True
            return report
        provider = session.get_one(Provider, provider_id)
        usage = customers_with_usage(session, provider_id, start, end)
        adjustments = adjustment_candidates(session, provider_id, before=start)
        candidates = set(usage) | {c for group in adjustments.values() for c in group}
        zero_invoice_customers: set[str] = set()
        if provider.zero_usage_policy == ZeroUsagePolicy.issue:
            zero_invoice_customers = set(
                session.scalars(
                    select(Subscription.customer_id).where(
                        Subscription.provider_id == provider_id,
                        Subscription.status == SubscriptionStatus.active,
                        Subscription.created_at < end,
                    )
                )
            )
            candidates |= zero_invoice_customers
        settled = set(
            session.scalars(
                select(Invoice.customer_id).where(
                    Invoice.provider_id == provider_id,
                    Invoice.period == period,
                    Invoice.status != InvoiceStatus.draft,
                )
            )
        )
    # Customers with any invoice past draft (a discarded one included) are done.
    todo = sorted(candidates - settled)
    for offset in range(0, len(todo), CHUNK_SIZE):
        chunk = todo[offset : offset + CHUNK_SIZE]
        with transaction(factory) as session:
            if _lock_period(session, provider_id, period).closed_at is not None:
                report.already_closed = True
                return report
            drafts = {
                invoice.customer_id: invoice
                for invoice in session.scalars(
                    select(Invoice).where(
                        Invoice.provider_id == provider_id,
                        Invoice.period == period,
                        Invoice.customer_id.in_(chunk),
                        Invoice.status != InvoiceStatus.void,
                    )
                )
            }
            contents = build_contents(
                session,
                provider_id,
                chunk,
                period=period,
                start=start,
                end=end,
                adjustment_candidates=adjustments,
                exclude_invoice_ids={d.id for d in drafts.values()},
            )
            for customer_id in chunk:
                content = contents[customer_id]
                totals = usage.get(customer_id)
                draft = drafts.get(customer_id)
                if (
                    draft is None
                    and not content.lines
                    and customer_id not in zero_invoice_customers
                ):
                    continue  # nothing to bill, e.g. late usage already adjusted elsewhere
                if draft is None:
                    new_draft(session, provider_id, period, start, end, content, totals, now=now)
                    report.created += 1
                elif draft.status == InvoiceStatus.draft:
                    write_content(draft, content, totals, now=now)
                    report.refreshed += 1
        if after_chunk is not None:
            after_chunk(offset + len(chunk))
    return report


def close_period(
    factory: sessionmaker[Session],
    provider_id: str,
    period: str,
    *,
    now: datetime,
    after_chunk: Callable[[int], None] | None = None,
) -> CloseReport:
    """Draft the period from the latest usage, then freeze every draft for review."""
    report = draft_period(factory, provider_id, period, now=now, after_chunk=after_chunk)
    if report.already_closed:
        return report
    with transaction(factory) as session:
        billing_period = _lock_period(session, provider_id, period)
        if billing_period.closed_at is not None:
            report.already_closed = True
            return report
        totals: dict[str, Decimal] = {}
        for invoice in session.scalars(
            select(Invoice).where(
                Invoice.provider_id == provider_id,
                Invoice.period == period,
                Invoice.status == InvoiceStatus.draft,
            )
        ):
            freeze(session, invoice, now=now)
            report.frozen += 1
            totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.total
        billing_period.closed_at = now
        if report.frozen:
            single = next(iter(totals)) if len(totals) == 1 else None
            notify(
                session,
                provider_id,
                "drafts.ready_for_review",
                subject_id=f"{provider_id}:{period}",
                data={
                    "period": period,
                    "count": report.frozen,
                    "total": totals[single] if single else None,
                    "currency": single,
                    "totals": totals,
                },
                now=now,
            )
    return report


def regenerate(
    session: Session, provider_id: str, invoice_id: str, *, actor: str, now: datetime
) -> Invoice:
    """Recompute a draft or frozen invoice from the latest usage (before approval only)."""
    invoice = get_invoice(session, provider_id, invoice_id, lock=True)
    if invoice.status not in (InvoiceStatus.draft, InvoiceStatus.pending_approval):
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; only drafts and invoices pending "
            "approval can be regenerated",
            code="illegal_transition",
        )
    start, end = invoice.period_start, invoice.period_end
    adjustments = adjustment_candidates(session, provider_id, before=start)
    contents = build_contents(
        session,
        provider_id,
        [invoice.customer_id],
        period=invoice.period,
        start=start,
        end=end,
        adjustment_candidates=adjustments,
        exclude_invoice_ids={invoice.id},
    )
    totals = customers_with_usage(session, provider_id, start, end).get(invoice.customer_id)
    before = {"total": invoice.total, "computed_at": invoice.computed_at}
    write_content(invoice, contents[invoice.customer_id], totals, now=now)
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="invoice.regenerated",
        object_type="invoice",
        object_id=invoice.id,
        before=before,
        after={"total": invoice.total, "computed_at": now},
        now=now,
    )
    return invoice
