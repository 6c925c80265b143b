"""Invoice lifecycle: drafts from usage, freezing, approval with a number, void, past due."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.audit.models import AuditEntry
from meterplane.customers.models import Customer
from meterplane.invoicing.content import Content, snapshot
from meterplane.invoicing.models import Invoice, InvoiceInstanceLine, InvoiceLine
from meterplane.invoicing.numbering import take_number
from meterplane.invoicing.states import FINAL_CONTENT, TRANSITIONS, InvoiceStatus
from meterplane.kit.errors import Conflict, NotFound
from meterplane.kit.ids import new_id
from meterplane.notifications.service import notify
from meterplane.tenancy.models import Provider


def transition(
    session: Session,
    invoice: Invoice,
    to: InvoiceStatus,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """The only way an invoice changes state; illegal moves raise, legal ones are audited."""
    current = InvoiceStatus(invoice.status)
    if to not in TRANSITIONS[current]:
        raise Conflict(
            f"invoice {invoice.id} is {current.value}; it cannot become {to.value}",
            code="illegal_transition",
            status=current.value,
            requested=to.value,
        )
    invoice.status = to
    audit.record(
        session,
        invoice.provider_id,
        actor=actor,
        action=f"invoice.{to.value}",
        object_type="invoice",
        object_id=invoice.id,
        before={"status": current.value},
        after={"status": to.value},
        now=now,
        reason=reason,
    )


def new_draft(
    session: Session,
    provider_id: str,
    period: str,
    start: datetime,
    end: datetime,
    content: Content,
    usage_totals: dict[str, int] | None,
    *,
    now: datetime,
) -> Invoice:
    invoice = Invoice(
        id=new_id("inv"),
        provider_id=provider_id,
        customer_id=content.customer_id,
        period=period,
        period_start=start,
        period_end=end,
        status=InvoiceStatus.draft,
        currency=content.currency or "USD",
        created_at=now,
    )
    write_content(invoice, content, usage_totals, now=now)
    session.add(invoice)
    audit.record(
        session,
        provider_id,
        actor="system",
        action="invoice.draft",
        object_type="invoice",
        object_id=invoice.id,
        before=None,
        after={"status": "draft", "period": period, "total": invoice.total},
        now=now,
    )
    notify(
        session,
        provider_id,
        "invoice.draft_created",
        subject_id=invoice.id,
        data={"invoice_id": invoice.id, "period": period},
        now=now,
    )
    return invoice


def write_content(
    invoice: Invoice, content: Content, usage_totals: dict[str, int] | None, *, now: datetime
) -> None:
    """Replace the lines and totals of an invoice that is still open to change."""
    if invoice.status in FINAL_CONTENT:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; its content is final",
            code="invoice_immutable",
        )
    invoice.currency = content.currency or invoice.currency
    invoice.lines = [
        InvoiceLine(
            provider_id=invoice.provider_id,
            position=index,
            kind=line.kind,
            usage_period=line.usage_period,
            plan_id=line.rated.plan_id,
            plan_name=line.rated.plan_name,
            dimension=line.rated.dimension,
            unit=line.rated.unit,
            quantity=line.rated.quantity,
            unit_price=line.rated.unit_price,
            amount=line.rated.amount,
        )
        for index, line in enumerate(content.lines)
    ]
    invoice.instance_lines = [
        InvoiceInstanceLine(
            provider_id=invoice.provider_id,
            position=index,
            instance_id=item.instance_id,
            external_billing_id=item.external_billing_id,
            cloud=item.cloud,
            region=item.region,
            plan_id=item.plan_id,
            dimension=item.dimension,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.amount,
        )
        for index, item in enumerate(content.instances)
    ]
    invoice.subtotal = content.subtotal
    invoice.tax_name = content.tax_name
    invoice.tax_percentage = content.tax_percentage
    invoice.tax_amount = content.tax_amount
    invoice.total = content.total
    invoice.usage_snapshot = snapshot(usage_totals)
    invoice.computed_at = now


def get_invoice(
    session: Session, provider_id: str, invoice_id: str, *, lock: bool = False
) -> Invoice:
    """Load one of the provider's invoices."""
    query = select(Invoice).where(Invoice.provider_id == provider_id, Invoice.id == invoice_id)
    invoice = session.scalar(query.with_for_update() if lock else query)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    return invoice


def list_invoices(
    session: Session,
    provider_id: str,
    *,
    period: str | None = None,
    status: InvoiceStatus | None = None,
    customer_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Invoice]:
    """The provider's invoices, newest period first."""
    query = select(Invoice).where(Invoice.provider_id == provider_id)
    if period is not None:
        query = query.where(Invoice.period == period)
    if status is not None:
        query = query.where(Invoice.status == status)
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    return session.scalars(
        query.order_by(
            Invoice.period.desc(), Invoice.number.desc(), Invoice.created_at.desc(), Invoice.id
        )
        .limit(limit)
        .offset(offset)
    ).all()


def approve(
    session: Session,
    provider_id: str,
    invoice_id: str,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> Invoice:
    """Issue a frozen invoice: next gapless number, due date, email, then collection."""
    invoice = get_invoice(session, provider_id, invoice_id, lock=True)
    transition(session, invoice, InvoiceStatus.issued, actor=actor, now=now, reason=reason)
    provider = session.get_one(Provider, provider_id)
    customer = session.get_one(Customer, invoice.customer_id)
    terms = customer.payment_terms_days
    if terms is None:
        terms = provider.payment_terms_days
    invoice.number = take_number(session, provider, now=now)
    invoice.issued_at = now
    invoice.due_at = now + timedelta(days=terms)
    session.flush()
    notify(
        session,
        provider_id,
        "invoice.issued",
        subject_id=invoice.id,
        data={
            "invoice_id": invoice.id,
            "number": invoice.number,
            "total": invoice.total,
            "currency": invoice.currency,
            "due_at": invoice.due_at,
        },
        now=now,
    )
    # Payments depend on invoicing (they move invoices to paid/failed), hence the late import.
    from meterplane.payments.service import start_collection

    start_collection(session, invoice, now=now)
    return invoice


def resend(
    session: Session, provider_id: str, invoice_id: str, *, actor: str, now: datetime
) -> Invoice:
    """Email an issued invoice (with its PDF) to the customer again."""
    invoice = get_invoice(session, provider_id, invoice_id, lock=True)
    if invoice.status not in FINAL_CONTENT or invoice.status == InvoiceStatus.void:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; only issued invoices can be resent",
            code="invoice_not_issued",
        )
    earlier = session.scalar(
        select(func.count()).where(
            AuditEntry.provider_id == provider_id,
            AuditEntry.object_id == invoice.id,
            AuditEntry.action == "invoice.resent",
        )
    )
    notify(
        session,
        provider_id,
        "invoice.resent",
        subject_id=f"{invoice.id}:{(earlier or 0) + 1}",
        data={"invoice_id": invoice.id, "number": invoice.number},
        now=now,
    )
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="invoice.resent",
        object_type="invoice",
        object_id=invoice.id,
        before=None,
        after={"status": invoice.status},
        now=now,
    )
    return invoice


def void(
    session: Session,
    provider_id: str,
    invoice_id: str,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> Invoice:
    """Cancel an invoice; its usage counts as settled and is never billed again."""
    invoice = get_invoice(session, provider_id, invoice_id, lock=True)
    transition(session, invoice, InvoiceStatus.void, actor=actor, now=now, reason=reason)
    invoice.voided_at = now
    return invoice


def freeze(session: Session, invoice: Invoice, *, now: datetime) -> None:
    transition(
        session,
        invoice,
        InvoiceStatus.pending_approval,
        actor="system",
        now=now,
        reason="billing period closed",
    )
    invoice.frozen_at = now


def mark_past_due(session: Session, provider_id: str, *, now: datetime) -> list[Invoice]:
    """Issued invoices left unpaid after their due date."""
    overdue = session.scalars(
        select(Invoice)
        .where(
            Invoice.provider_id == provider_id,
            Invoice.status == InvoiceStatus.issued,
            Invoice.due_at < now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for invoice in overdue:
        transition(
            session,
            invoice,
            InvoiceStatus.past_due,
            actor="system",
            now=now,
            reason=f"unpaid after due date {invoice.due_at}",
        )
        notify(
            session,
            provider_id,
            "invoice.past_due",
            subject_id=invoice.id,
            data={"invoice_id": invoice.id, "due_at": invoice.due_at},
            now=now,
        )
    return list(overdue)


def due_for_auto_approval(session: Session, provider: Provider, *, now: datetime) -> list[str]:
    """Frozen invoices whose review window has run out."""
    if provider.auto_approve_after_days is None:
        return []
    cutoff = now - timedelta(days=provider.auto_approve_after_days)
    return list(
        session.scalars(
            select(Invoice.id)
            .where(
                Invoice.provider_id == provider.id,
                Invoice.status == InvoiceStatus.pending_approval,
                Invoice.frozen_at <= cutoff,
            )
            .order_by(Invoice.frozen_at, Invoice.id)
        )
    )


def invoice_summary(invoice: Invoice) -> dict[str, Any]:
    return {"status": invoice.status, "total": invoice.total, "number": invoice.number}
