from typing import Annotated, Any

from fastapi import APIRouter, Query

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.invoicing import close as closing
from meterplane.invoicing import service, settings
from meterplane.invoicing.models import Invoice, TaxRate
from meterplane.invoicing.periods import period_bounds
from meterplane.invoicing.schemas import (
    BillingSettingsIn,
    BillingSettingsOut,
    BulkApproveIn,
    CloseIn,
    InstanceLineOut,
    InvoiceLineOut,
    InvoiceOut,
    ReasonIn,
    TaxRateIn,
    TaxRateOut,
)
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.errors import MeterplaneError
from meterplane.tenancy.service import get_provider

router = APIRouter(prefix="/v1", tags=["invoices"])


def invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        customer_id=invoice.customer_id,
        period=invoice.period,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        status=invoice.status,
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        tax_name=invoice.tax_name,
        tax_percentage=invoice.tax_percentage,
        tax_amount=invoice.tax_amount,
        total=invoice.total,
        issued_at=invoice.issued_at,
        due_at=invoice.due_at,
        paid_at=invoice.paid_at,
        voided_at=invoice.voided_at,
        computed_at=invoice.computed_at,
        lines=[InvoiceLineOut.model_validate(line, from_attributes=True) for line in invoice.lines],
        instances=[
            InstanceLineOut.model_validate(line, from_attributes=True)
            for line in invoice.instance_lines
        ],
    )


@router.post("/billing/close")
def close_period(body: CloseIn, caller: Admin, factory: Factory, now: Now) -> dict[str, Any]:
    """Close a month on demand: draft every customer's invoice and freeze it for review."""
    period_bounds(body.period)
    report = closing.close_period(factory, caller.provider_id, body.period, now=now)
    return report.as_dict()


@router.get("/invoices")
def list_invoices(
    caller: Admin,
    factory: Factory,
    period: str | None = None,
    status: InvoiceStatus | None = None,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        invoices = service.list_invoices(
            session,
            caller.provider_id,
            period=period,
            status=status,
            customer_id=customer_id,
            limit=limit,
            offset=offset,
        )
        return {"data": [invoice_out(i) for i in invoices]}


@router.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: str, caller: Admin, factory: Factory) -> InvoiceOut:
    with unit_of_work(factory) as session:
        return invoice_out(service.get_invoice(session, caller.provider_id, invoice_id))


@router.post("/invoices/{invoice_id}/approve")
def approve(
    invoice_id: str, caller: Admin, factory: Factory, now: Now, body: ReasonIn | None = None
) -> InvoiceOut:
    """Issue the invoice: it gets the next number of the sequence and a due date."""
    with unit_of_work(factory) as session:
        invoice = service.approve(
            session,
            caller.provider_id,
            invoice_id,
            actor=caller.actor,
            now=now,
            reason=body.reason if body else None,
        )
        return invoice_out(invoice)


@router.post("/invoices/approve")
def approve_many(body: BulkApproveIn, caller: Admin, factory: Factory, now: Now) -> dict[str, Any]:
    """Approve several invoices; each succeeds or fails on its own."""
    results: list[dict[str, Any]] = []
    for invoice_id in dict.fromkeys(body.invoice_ids):
        try:
            with unit_of_work(factory) as session:
                invoice = service.approve(
                    session, caller.provider_id, invoice_id, actor=caller.actor, now=now
                )
                results.append(
                    {"id": invoice_id, "status": invoice.status, "number": invoice.number}
                )
        except MeterplaneError as exc:
            results.append({"id": invoice_id, "error": {"code": exc.code, "message": exc.message}})
    return {"data": results}


@router.post("/invoices/{invoice_id}/void")
def void(
    invoice_id: str, caller: Admin, factory: Factory, now: Now, body: ReasonIn | None = None
) -> InvoiceOut:
    """Cancel the invoice (a draft is thereby discarded); its usage is not billed again."""
    with unit_of_work(factory) as session:
        return invoice_out(
            service.void(
                session,
                caller.provider_id,
                invoice_id,
                actor=caller.actor,
                now=now,
                reason=body.reason if body else None,
            )
        )


@router.post("/invoices/{invoice_id}/resend")
def resend(invoice_id: str, caller: Admin, factory: Factory, now: Now) -> InvoiceOut:
    """Email an issued invoice to the customer's billing addresses again."""
    with unit_of_work(factory) as session:
        return invoice_out(
            service.resend(session, caller.provider_id, invoice_id, actor=caller.actor, now=now)
        )


@router.post("/invoices/{invoice_id}/regenerate")
def regenerate(invoice_id: str, caller: Admin, factory: Factory, now: Now) -> InvoiceOut:
    """Recompute a draft or an invoice pending approval from the latest usage."""
    with unit_of_work(factory) as session:
        return invoice_out(
            closing.regenerate(session, caller.provider_id, invoice_id, actor=caller.actor, now=now)
        )


def _settings_out(caller_provider: Any) -> BillingSettingsOut:
    return BillingSettingsOut.model_validate(settings.settings_snapshot(caller_provider))


@router.get("/provider/billing-settings", tags=["provider"])
def get_billing_settings(caller: Admin, factory: Factory) -> BillingSettingsOut:
    with unit_of_work(factory) as session:
        return _settings_out(get_provider(session, caller.provider_id))


@router.patch("/provider/billing-settings", tags=["provider"])
def update_billing_settings(
    body: BillingSettingsIn, caller: Admin, factory: Factory, now: Now
) -> BillingSettingsOut:
    """Send ``auto_approve_after_days: null`` to approve by hand."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with unit_of_work(factory) as session:
        return _settings_out(
            settings.update_settings(
                session, caller.provider_id, changes, actor=caller.actor, now=now
            )
        )


def _tax_out(rate: TaxRate) -> TaxRateOut:
    return TaxRateOut(
        id=rate.id, name=rate.name, percentage=rate.percentage, jurisdiction=rate.jurisdiction
    )


@router.post("/tax-rates", status_code=201, tags=["provider"])
def create_tax_rate(body: TaxRateIn, caller: Admin, factory: Factory, now: Now) -> TaxRateOut:
    with unit_of_work(factory) as session:
        return _tax_out(
            settings.create_tax_rate(
                session,
                caller.provider_id,
                name=body.name,
                percentage=body.percentage,
                jurisdiction=body.jurisdiction,
                actor=caller.actor,
                now=now,
            )
        )


@router.get("/tax-rates", tags=["provider"])
def list_tax_rates(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        return {"data": [_tax_out(r) for r in settings.list_tax_rates(session, caller.provider_id)]}
