"""``meterplane apply``: pricing as code from a compose-style service file."""

import os
from pathlib import Path

import typer

from meterplane.catalog.apply import apply_service_file
from meterplane.catalog.servicefile import ServiceFileInvalid
from meterplane.cli.context import fail, print_json, session_factory
from meterplane.kit.errors import MeterplaneError
from meterplane.kit.time import utc_now

PROVIDER_ENV = "METERPLANE_PROVIDER_ID"


def apply(
    path: Path = typer.Argument(..., help="A compose-style YAML file with x-meterplane-* keys."),
    provider_id: str | None = typer.Option(
        None, "--provider", help=f"Provider to apply to (default: ${PROVIDER_ENV})."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the changes, make none."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create or update a service's plans, prices, quotas and integrations from a file."""
    provider_id = provider_id or os.environ.get(PROVIDER_ENV) or None
    if not provider_id:
        fail(f"no provider: pass --provider PROVIDER_ID or set {PROVIDER_ENV}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}")
    try:
        # One transaction: any error, or a dry run, leaves the catalogue as it was.
        with session_factory()() as session, session.begin():
            result = apply_service_file(session, provider_id, text, now=utc_now(), dry_run=dry_run)
    except ServiceFileInvalid as exc:
        if as_json:
            print_json(
                {
                    "errors": [
                        {"path": e.path, "message": e.message, "code": e.code} for e in exc.errors
                    ]
                }
            )
        else:
            typer.echo(f"error: {path}: {len(exc.errors)} error(s), nothing changed", err=True)
            for error in exc.errors:
                typer.echo(f"  {error}", err=True)
        raise typer.Exit(1) from exc
    except MeterplaneError as exc:
        fail(f"{exc.message} ({exc.code})")

    if as_json:
        print_json(result.as_json())
        return
    if not result.changes:
        typer.echo(f"service {result.service_name}: no changes")
        return
    for line in result.lines():
        typer.echo(line)
    count = len(result.changes)
    if dry_run:
        typer.echo(f"dry run: {count} change(s) would be made; nothing changed")
    else:
        typer.echo(
            f"applied {count} change(s) to service {result.service_name} ({result.service_id})"
        )
