"""``meterplane outbox`` (inspect and retry notifications) and ``meterplane webhooks``."""

import typer
from rich.console import Console
from rich.table import Table

from meterplane.cli.billing import provider_option, require_provider
from meterplane.cli.context import cli_transaction, print_json
from meterplane.kit.time import utc_now
from meterplane.notifications import outbox, webhooks
from meterplane.notifications.models import Channel, OutboxMessage, OutboxStatus

app = typer.Typer(help="The notifications outbox: emails and webhooks.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Provider webhook endpoints.", no_args_is_help=True)


def _row(message: OutboxMessage, failing: set[str]) -> dict[str, object]:
    return {
        "id": message.id,
        "event": message.event,
        "subject_id": message.subject_id,
        "channel": message.channel.value,
        "recipient": message.recipient,
        "status": message.status.value,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at.isoformat(),
        "last_error": message.last_error,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "address_failing": message.channel == Channel.email and message.recipient in failing,
    }


@app.command("list")
def list_messages(
    provider_id: str = provider_option(),
    status: OutboxStatus | None = typer.Option(None, "--status"),
    channel: Channel | None = typer.Option(None, "--channel"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List outbox messages, newest first; failing addresses are flagged."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        failing = {f.address for f in outbox.list_failing_addresses(session, provider_id)}
        rows = [
            _row(m, failing)
            for m in outbox.list_messages(
                session, provider_id, status=status, channel=channel, limit=limit
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "event", "to", "status", "tries", "next / sent", "error")
    for row in rows:
        recipient = str(row["recipient"]) + (" (failing)" if row["address_failing"] else "")
        when = row["sent_at"] or row["next_attempt_at"]
        table.add_row(
            str(row["id"]),
            str(row["event"]),
            f"{row['channel']}: {recipient}",
            str(row["status"]),
            str(row["attempts"]),
            str(when),
            str(row["last_error"] or ""),
        )
    Console().print(table)


@app.command("retry")
def retry(
    message_id: int = typer.Argument(..., help="Outbox message id."),
    provider_id: str = provider_option(),
) -> None:
    """Send a failed message again now (clears a failing mark on its address)."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        message = outbox.retry(session, provider_id, message_id, now=utc_now())
        typer.echo(f"message {message.id} to {message.recipient} queued again")


@app.command("failing")
def failing(
    provider_id: str = provider_option(), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Addresses the mail server refused for good."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        rows = [
            {"address": f.address, "reason": f.reason, "failed_at": f.failed_at.isoformat()}
            for f in outbox.list_failing_addresses(session, provider_id)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['address']}\t{row['failed_at']}\t{row['reason']}")


@webhooks_app.command("add")
def add(
    url: str = typer.Argument(..., help="https URL that receives signed JSON events."),
    events: list[str] = typer.Option(
        ...,
        "--events",
        "-e",
        help=f"Repeat or comma-separate: {', '.join(webhooks.WEBHOOK_EVENTS)}",
    ),
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register an endpoint; prints its signing secret (shown this once)."""
    provider_id = require_provider(provider_id)
    names = [name.strip() for item in events for name in item.split(",") if name.strip()]
    with cli_transaction() as session:
        endpoint = webhooks.create_endpoint(session, provider_id, url, names, now=utc_now())
        result = {
            "id": endpoint.id,
            "url": endpoint.url,
            "events": endpoint.events,
            "secret": endpoint.secret,
        }
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"endpoint {result['id']} → {url}\nsigning secret (shown once): {result['secret']}"
        )


@webhooks_app.command("list")
def list_endpoints(
    provider_id: str = provider_option(), as_json: bool = typer.Option(False, "--json")
) -> None:
    """The provider's endpoints."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        rows = [
            {"id": e.id, "url": e.url, "events": e.events, "created_at": e.created_at.isoformat()}
            for e in webhooks.list_endpoints(session, provider_id)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['id']}\t{row['url']}\t{','.join(row['events'])}")


@webhooks_app.command("delete")
def delete(endpoint_id: str = typer.Argument(...), provider_id: str = provider_option()) -> None:
    """Stop sending to an endpoint (its delivery log stays)."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        webhooks.delete_endpoint(session, provider_id, endpoint_id, now=utc_now())
    typer.echo(f"endpoint {endpoint_id} deleted")
