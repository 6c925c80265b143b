"""``meterplane audit``: who changed pricing and quotas, when, and how."""

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from meterplane.audit import service
from meterplane.catalog.schemas import AuditEntryOut
from meterplane.cli.context import cli_transaction, print_json
from meterplane.cli.plans import provider_option, resolve_provider

app = typer.Typer(help="The audit log of catalogue and billing changes.", no_args_is_help=True)


@app.command("list")
def list_entries(
    provider_id: str | None = provider_option(),
    object_type: str | None = typer.Option(None, "--object-type", help="e.g. plan, service."),
    object_id: str | None = typer.Option(None, "--object-id", help="e.g. plan_…"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Audit entries, newest first, as ``GET /v1/audit-log`` lists them."""
    provider = resolve_provider(provider_id)
    with cli_transaction() as session:
        entries: list[dict[str, Any]] = [
            AuditEntryOut.model_validate(e, from_attributes=True).model_dump(mode="json")
            for e in service.list_entries(
                session, provider, object_type=object_type, object_id=object_id, limit=limit
            )
        ]
    if as_json:
        print_json({"data": entries})
        return
    table = Table(title=f"audit log of {provider} (newest first)")
    for column in ("id", "at", "actor", "action", "object", "after"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry["id"]),
            entry["at"],
            entry["actor"],
            entry["action"],
            f"{entry['object_type']} {entry['object_id']}",
            json.dumps(entry["after"], sort_keys=True) if entry["after"] is not None else "-",
        )
    Console(width=200).print(table)
