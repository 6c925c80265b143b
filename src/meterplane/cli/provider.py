import typer

from meterplane.cli import profile
from meterplane.cli.context import cli_transaction, print_json
from meterplane.kit.time import utc_now
from meterplane.tenancy import service
from meterplane.tenancy.models import ApiKeyScope

app = typer.Typer(help="Providers (tenants) and their API keys.", no_args_is_help=True)
app.add_typer(profile.app, name="profile", help="Business profile and logo on invoices.")


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="The provider's name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a provider and its first admin API key (shown once)."""
    now = utc_now()
    with cli_transaction() as session:
        provider = service.create_provider(session, name, now=now)
        issued = service.create_api_key(
            session, provider.id, ApiKeyScope.admin, name="initial admin key", now=now
        )
    if as_json:
        print_json({"provider_id": provider.id, "api_key": issued.secret})
    else:
        typer.echo(f"provider {provider.id} ({provider.name})")
        typer.echo(f"admin API key (shown once): {issued.secret}")


@app.command("key")
def create_key(
    provider_id: str = typer.Option(..., "--provider"),
    scope: ApiKeyScope = typer.Option(ApiKeyScope.ingest, "--scope"),
    name: str = typer.Option("cli key", "--name"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Mint another API key for a provider."""
    with cli_transaction() as session:
        issued = service.create_api_key(session, provider_id, scope, name=name, now=utc_now())
    if as_json:
        print_json({"key_id": issued.api_key.id, "scope": scope.value, "api_key": issued.secret})
    else:
        typer.echo(f"{scope.value} API key {issued.api_key.id} (shown once): {issued.secret}")
