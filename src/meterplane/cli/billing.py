import typer

from meterplane.cli.context import fail, print_json, session_factory
from meterplane.invoicing import close as closing
from meterplane.kit.errors import MeterplaneError
from meterplane.kit.time import utc_now

app = typer.Typer(help="The monthly close.", no_args_is_help=True)


def provider_option() -> str:
    option: str = typer.Option(
        "",
        "--provider",
        envvar="METERPLANE_PROVIDER_ID",
        help="Provider id (default: $METERPLANE_PROVIDER_ID).",
        show_default=False,
    )
    return option


def require_provider(provider_id: str) -> str:
    if not provider_id:
        fail("give --provider or set METERPLANE_PROVIDER_ID")
    return provider_id


@app.command("close")
def close(
    period: str = typer.Option(..., "--period", help="Month to close, e.g. 2026-10."),
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Close a month now: draft every customer's invoice and freeze it for review."""
    provider_id = require_provider(provider_id)
    try:
        report = closing.close_period(session_factory(), provider_id, period, now=utc_now())
    except MeterplaneError as exc:
        fail(f"{exc.message} ({exc.code})")
    if as_json:
        print_json(report.as_dict())
    elif report.already_closed:
        typer.echo(f"{period} was already closed; nothing changed")
    else:
        typer.echo(
            f"{period} closed: {report.created} invoices created, "
            f"{report.refreshed} recomputed, {report.frozen} awaiting approval"
        )
