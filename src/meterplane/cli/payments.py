"""``meterplane payments``: an invoice's payment history, refunds, and a payments pass."""

from decimal import Decimal, InvalidOperation

import typer

from meterplane.cli.billing import provider_option, require_provider
from meterplane.cli.context import cli_transaction, fail, print_json, session_factory
from meterplane.kit.errors import MeterplaneError
from meterplane.kit.time import utc_now
from meterplane.payments import collection, service
from meterplane.payments import worker as payments_worker
from meterplane.payments.gateway import StripeGateway
from meterplane.settings import get_settings

app = typer.Typer(help="Payments through Stripe: history, refunds.", no_args_is_help=True)


def _gateway() -> StripeGateway:
    try:
        return StripeGateway(get_settings())
    except MeterplaneError as exc:
        fail(f"{exc.message} ({exc.code})")


@app.command("history")
def history(
    invoice_id: str = typer.Argument(..., help="Invoice id."),
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Attempts, amounts, outcomes, Stripe ids and refunds of one invoice."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        result = service.payment_history(session, provider_id, invoice_id)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result['number'] or result['invoice_id']}  {result['status']}  "
        f"total {result['total']} {result['currency']}  paid {result['amount_paid']}  "
        f"refunded {result['amount_refunded']}"
    )
    for a in result["attempts"]:
        outcome = a["status"]
        if a["decline_code"]:
            outcome += f" ({a['decline_code']}: {a['failure_reason']})"
        if a["next_retry_at"]:
            outcome += f", retry at {a['next_retry_at'].isoformat()}"
        typer.echo(
            f"  #{a['attempt_number']} {a['kind']:<11} {a['amount']}"
            f" {a['created_at']:%Y-%m-%d %H:%M}"
            f"  {a['stripe_payment_intent_id'] or '-'}  {outcome}"
        )
    for r in result["refunds"]:
        typer.echo(
            f"  refund {r['amount']} {r['status']}  {r['stripe_refund_id'] or '-'}"
            f"  {r['reason'] or ''}"
        )


@app.command("refund")
def refund(
    invoice_id: str = typer.Argument(..., help="Invoice id."),
    amount: str | None = typer.Option(None, "--amount", help="Default: all that is left."),
    reason: str | None = typer.Option(None, "--reason"),
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Refund a paid invoice, fully or partly, on the Stripe account it was paid to."""
    provider_id = require_provider(provider_id)
    value = None
    if amount is not None:
        try:
            value = Decimal(amount)
        except InvalidOperation:
            fail(f"--amount: '{amount}' is not a number")
    try:
        result = collection.refund_invoice(
            session_factory(),
            _gateway(),
            provider_id,
            invoice_id,
            amount=value,
            reason=reason,
            actor="cli",
            now=utc_now(),
        )
    except MeterplaneError as exc:
        fail(f"{exc.message} ({exc.code})")
    out = {
        "id": result.id,
        "status": result.status,
        "amount": format(service.from_minor(result.amount_minor, result.currency), "f"),
        "currency": result.currency,
        "stripe_refund_id": result.stripe_refund_id,
        "failure_reason": result.failure_reason,
    }
    if as_json:
        print_json(out)
    else:
        typer.echo(f"refund {out['id']}: {out['amount']} {out['currency']} {out['status']}")


@app.command("run")
def run(as_json: bool = typer.Option(False, "--json")) -> None:
    """One payments pass now: webhooks, reconciliation, retries, due charges, refunds."""
    report = payments_worker.run_due(session_factory(), now=utc_now(), gateway=_gateway())
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(
            f"{report.events} events, {len(report.submitted)} charges submitted, "
            f"{len(report.retries)} retries, {len(report.reconciled)} reconciled, "
            f"{len(report.errors)} errors"
        )
