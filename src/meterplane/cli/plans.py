"""``meterplane plans``: list, show and update plans (quotas and names)."""

import os
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from meterplane.api.routes.catalog import plan_out
from meterplane.catalog import service
from meterplane.catalog.models import Plan
from meterplane.cli.context import cli_transaction, fail, print_json
from meterplane.kit.time import utc_now

PROVIDER_ENV = "METERPLANE_PROVIDER_ID"

app = typer.Typer(help="Plans: prices, price versions and quotas.", no_args_is_help=True)


def provider_option() -> Any:
    return typer.Option(None, "--provider", help=f"Provider (default: ${PROVIDER_ENV}).")


def resolve_provider(provider_id: str | None) -> str:
    resolved = provider_id or os.environ.get(PROVIDER_ENV)
    if not resolved:
        fail(f"no provider: pass --provider PROVIDER_ID or set {PROVIDER_ENV}")
    return resolved


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan exactly as ``GET /v1/plans/{id}`` shows it."""
    out: dict[str, Any] = plan_out(plan, utc_now()).model_dump(mode="json")
    return out


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


@app.command("list")
def list_plans(
    provider_id: str | None = provider_option(),
    service_id: str | None = typer.Option(None, "--service", help="Only this service's plans."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The provider's plans with the prices in force now and their quotas."""
    provider = resolve_provider(provider_id)
    with cli_transaction() as session:
        names = {s.id: s.name for s in service.list_services(session, provider)}
        plans = [plan_json(p) for p in service.list_plans(session, provider, service_id=service_id)]
    if as_json:
        print_json({"data": plans})
        return
    table = Table(title=f"plans of {provider}")
    for column in ("id", "service", "name", "currency", "prices", "max instances", "payment"):
        table.add_column(column)
    for plan in plans:
        table.add_row(
            plan["id"],
            names.get(plan["service_id"], plan["service_id"]),
            plan["name"],
            plan["currency"],
            ", ".join(f"{k} {v}" for k, v in plan["prices"].items()) or "-",
            _limit(plan["max_instances_per_customer"]),
            "required" if plan["require_payment_method"] else "-",
        )
    Console(width=200).print(table)


@app.command("show")
def show(
    plan_id: str = typer.Argument(..., help="The plan's id (plan_…)."),
    provider_id: str | None = provider_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One plan: prices in force, every price version, quotas."""
    provider = resolve_provider(provider_id)
    with cli_transaction() as session:
        plan = plan_json(service.get_plan(session, provider, plan_id))
    if as_json:
        print_json(plan)
        return
    _print_plan(plan)


def _print_plan(plan: dict[str, Any]) -> None:
    typer.echo(f"plan {plan['name']} ({plan['id']}), service {plan['service_id']}")
    typer.echo(f"currency: {plan['currency']}")
    typer.echo(f"max_instances_per_customer: {_limit(plan['max_instances_per_customer'])}")
    typer.echo(f"require_payment_method: {str(plan['require_payment_method']).lower()}")
    typer.echo("prices in force now (per unit-hour):")
    for key, value in plan["prices"].items():
        typer.echo(f"  {key}: {value}")
    typer.echo("price versions:")
    for v in plan["price_versions"]:
        typer.echo(
            f"  {v['effective_from']}  {v['dimension']}: {v['unit_price']}  ({v['applies_to']})"
        )


@app.command("update")
def update(
    plan_id: str = typer.Argument(..., help="The plan's id (plan_…)."),
    provider_id: str | None = provider_option(),
    name: str | None = typer.Option(None, "--name", help="Rename the plan."),
    max_instances: int | None = typer.Option(
        None, "--max-instances", min=0, help="Most running instances per customer."
    ),
    unlimited: bool = typer.Option(False, "--unlimited", help="No instance limit."),
    require_payment_method: bool | None = typer.Option(
        None,
        "--require-payment-method/--no-require-payment-method",
        help="Whether customers need a payment method on file.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rename a plan or change its quotas (a limit below current usage is refused)."""
    provider = resolve_provider(provider_id)
    if unlimited and max_instances is not None:
        fail("give --max-instances N or --unlimited, not both")
    if name is not None and not name.strip():
        fail("--name must not be empty")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if unlimited:
        changes["max_instances_per_customer"] = None
    elif max_instances is not None:
        changes["max_instances_per_customer"] = max_instances
    if require_payment_method is not None:
        changes["require_payment_method"] = require_payment_method
    if not changes:
        fail(
            "nothing to change: give --name, --max-instances, --unlimited "
            "or --[no-]require-payment-method"
        )
    with cli_transaction() as session:
        plan = plan_json(
            service.update_plan(
                session, provider, plan_id, actor="cli:plans", now=utc_now(), **changes
            )
        )
    if as_json:
        print_json(plan)
        return
    _print_plan(plan)
