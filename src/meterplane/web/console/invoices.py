"""Manage Invoices: filter, review a draft (lines, per-instance breakdown), approve, void, PDF."""

from typing import Annotated

from fastapi import Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from meterplane.customers.service import list_customers
from meterplane.invoicing import service
from meterplane.invoicing.pdf import load_document, render_document
from meterplane.invoicing.states import TRANSITIONS, InvoiceStatus
from meterplane.kit.errors import InvalidInput, MeterplaneError
from meterplane.payments.service import attempts_of, refunds_of
from meterplane.web.console.base import PREFIX, CurrentUser, console_router, db, now
from meterplane.web.routing import redirect_to, render
from meterplane.web.sessions import flash

router = console_router()
PAGE_SIZE = 50


def _status(value: str | None) -> InvoiceStatus | None:
    if not value:
        return None
    try:
        return InvoiceStatus(value)
    except ValueError:
        raise InvalidInput(f"unknown invoice status '{value}'", code="invalid_status") from None


@router.get("/invoices")
def invoices(
    request: Request,
    me: CurrentUser,
    period: str = "",
    status: str = "",
    customer: str = "",
    page: int = 1,
) -> Response:
    page = max(page, 1)
    with db(request) as s:
        customers = list_customers(s, me.provider_id)
        rows = service.list_invoices(
            s,
            me.provider_id,
            period=period.strip() or None,
            status=_status(status),
            customer_id=customer or None,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        return render(
            request,
            "console/invoices.html",
            {
                "me": me,
                "active": "invoices",
                "invoices": rows[:PAGE_SIZE],
                "has_more": len(rows) > PAGE_SIZE,
                "page": page,
                "filters": {"period": period, "status": status, "customer": customer},
                "statuses": list(InvoiceStatus),
                "customers": customers,
                "names": {c.id: c.name for c in customers},
            },
        )


@router.get("/invoices/{invoice_id}")
def invoice_detail(request: Request, me: CurrentUser, invoice_id: str) -> Response:
    with db(request) as s:
        invoice = service.get_invoice(s, me.provider_id, invoice_id)
        document = load_document(s, me.provider_id, invoice_id)
        return render(
            request,
            "console/invoice.html",
            {
                "me": me,
                "active": "invoices",
                "invoice": invoice,
                "doc": document,
                "attempts": attempts_of(s, invoice.id),
                "refunds": refunds_of(s, invoice.id),
                "can_approve": invoice.status is InvoiceStatus.pending_approval,
                "can_void": InvoiceStatus.void in TRANSITIONS[invoice.status],
            },
        )


@router.get("/invoices/{invoice_id}/pdf")
async def invoice_pdf(request: Request, me: CurrentUser, invoice_id: str) -> Response:
    def load() -> bytes:
        with db(request) as s:
            document = load_document(s, me.provider_id, invoice_id)
        filename.append(document.filename)
        return render_document(document)

    filename: list[str] = []
    content = await run_in_threadpool(load)
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename[0]}"'},
    )


@router.post("/invoices/{invoice_id}/approve")
def approve(request: Request, me: CurrentUser, invoice_id: str) -> Response:
    me.require("invoices")
    with db(request) as s:
        invoice = service.approve(s, me.provider_id, invoice_id, actor=me.actor, now=now(request))
        number = invoice.number
    flash(request, f"Invoice {number} is issued and on its way to the customer.")
    return redirect_to(request, f"{PREFIX}/invoices/{invoice_id}")


@router.post("/invoices/{invoice_id}/void")
def void(
    request: Request,
    me: CurrentUser,
    invoice_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    me.require("invoices")
    with db(request) as s:
        service.void(
            s,
            me.provider_id,
            invoice_id,
            actor=me.actor,
            now=now(request),
            reason=reason.strip() or "voided in the console",
        )
    flash(request, "The invoice is void.")
    return redirect_to(request, f"{PREFIX}/invoices/{invoice_id}")


@router.post("/invoices/bulk")
def bulk(
    request: Request,
    me: CurrentUser,
    action: Annotated[str, Form()],
    invoice_ids: Annotated[list[str] | None, Form()] = None,
    back: Annotated[str, Form()] = "",
) -> Response:
    """Approve or void the selected invoices; each succeeds or fails on its own."""
    me.require("invoices")
    if action not in ("approve", "void"):
        raise InvalidInput(f"unknown action '{action}'", code="invalid_action")
    target = back if back.startswith(f"{PREFIX}/invoices") else f"{PREFIX}/invoices"
    chosen = list(dict.fromkeys(invoice_ids or []))
    if not chosen:
        flash(request, "Select at least one invoice first.", "error")
        return redirect_to(request, target)
    done, failures = 0, []
    for invoice_id in chosen:
        try:
            with db(request) as s:
                if action == "approve":
                    service.approve(s, me.provider_id, invoice_id, actor=me.actor, now=now(request))
                else:
                    service.void(
                        s,
                        me.provider_id,
                        invoice_id,
                        actor=me.actor,
                        now=now(request),
                        reason="voided in the console",
                    )
            done += 1
        except MeterplaneError as error:
            failures.append(f"{invoice_id}: {error.message}")
    verb = "approved" if action == "approve" else "voided"
    if done:
        flash(request, f"{done} invoice{'s' if done != 1 else ''} {verb}.")
    for failure in failures:
        flash(request, f"Not {verb}: {failure}", "error")
    return redirect_to(request, target)
