from decimal import Decimal

import typer
from rich.console import Console
from rich.table import Table

from meterplane.cli import invoice_pdf
from meterplane.cli.billing import provider_option, require_provider
from meterplane.cli.context import cli_transaction, print_json
from meterplane.invoicing import close as closing
from meterplane.invoicing import service
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.time import utc_now

app = typer.Typer(help="Review, approve and void invoices.", no_args_is_help=True)
app.command("pdf")(invoice_pdf.pdf)


def _summary(invoice: Invoice) -> dict[str, object]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "customer_id": invoice.customer_id,
        "period": invoice.period,
        "status": invoice.status,
        "currency": invoice.currency,
        "subtotal": format(invoice.subtotal, "f"),
        "tax": format(invoice.tax_amount, "f"),
        "total": format(invoice.total, "f"),
        "due_at": invoice.due_at.isoformat() if invoice.due_at else None,
    }


def _money(value: Decimal) -> str:
    return format(value, ",f")


@app.command("list")
def list_invoices(
    provider_id: str = provider_option(),
    period: str | None = typer.Option(None, "--period"),
    status: InvoiceStatus | None = typer.Option(None, "--status"),
    customer_id: str | None = typer.Option(None, "--customer"),
    limit: int = typer.Option(100, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List invoices, newest period first."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        rows = [
            _summary(i)
            for i in service.list_invoices(
                session,
                provider_id,
                period=period,
                status=status,
                customer_id=customer_id,
                limit=limit,
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="invoices")
    for column in ("id", "number", "customer_id", "period", "status", "total"):
        table.add_column(column, justify="right" if column == "total" else "left")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["number"] or "—"),
            str(row["customer_id"]),
            str(row["period"]),
            str(row["status"]),
            f"{row['total']} {row['currency']}",
        )
    Console().print(table)


@app.command("show")
def show(
    invoice_id: str,
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One invoice with its lines."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        invoice = service.get_invoice(session, provider_id, invoice_id)
        summary = _summary(invoice)
        lines = [
            {
                "kind": line.kind,
                "usage_period": line.usage_period,
                "plan": line.plan_name,
                "dimension": line.dimension,
                "quantity": format(line.quantity, "f"),
                "unit_price": format(line.unit_price, "f"),
                "amount": format(line.amount, "f"),
            }
            for line in invoice.lines
        ]
    if as_json:
        print_json({**summary, "lines": lines})
        return
    typer.echo(
        f"{summary['number'] or 'DRAFT'}  {summary['period']}  {summary['status']}  "
        f"customer {summary['customer_id']}"
    )
    table = Table()
    for column in ("plan", "dimension", "quantity", "unit_price", "amount"):
        table.add_column(column, justify="left" if column in ("plan", "dimension") else "right")
    for line in lines:
        label = (
            line["dimension"]
            if line["kind"] == "usage"
            else (f"{line['dimension']} (adjustment {line['usage_period']})")
        )
        table.add_row(line["plan"], label, line["quantity"], line["unit_price"], line["amount"])
    Console().print(table)
    typer.echo(
        f"subtotal {summary['subtotal']}  tax {summary['tax']}  "
        f"total {summary['total']} {summary['currency']}"
    )


@app.command("approve")
def approve(invoice_ids: list[str], provider_id: str = provider_option()) -> None:
    """Approve (issue) one or more invoices."""
    provider_id = require_provider(provider_id)
    for invoice_id in invoice_ids:
        with cli_transaction() as session:
            invoice = service.approve(session, provider_id, invoice_id, actor="cli", now=utc_now())
            typer.echo(
                f"{invoice.id} issued as {invoice.number}, due "
                f"{invoice.due_at.date() if invoice.due_at else '—'}"
            )


@app.command("void")
def void(
    invoice_id: str,
    provider_id: str = provider_option(),
    reason: str | None = typer.Option(None, "--reason"),
) -> None:
    """Void an invoice (a draft is thereby discarded)."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        invoice = service.void(
            session, provider_id, invoice_id, actor="cli", now=utc_now(), reason=reason
        )
        typer.echo(f"{invoice.id} voided")


@app.command("resend")
def resend(invoice_id: str, provider_id: str = provider_option()) -> None:
    """Email an issued invoice to the customer again (the worker sends it)."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        invoice = service.resend(session, provider_id, invoice_id, actor="cli", now=utc_now())
        typer.echo(f"{invoice.number} queued for sending again")


@app.command("regenerate")
def regenerate(invoice_id: str, provider_id: str = provider_option()) -> None:
    """Recompute a draft or pending invoice from the latest usage."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        invoice = closing.regenerate(session, provider_id, invoice_id, actor="cli", now=utc_now())
        typer.echo(f"{invoice.id} recomputed: total {_money(invoice.total)} {invoice.currency}")
