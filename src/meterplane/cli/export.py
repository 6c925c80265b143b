"""``meterplane export``: the metering integration's status, backfills and target."""

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meterplane.cli.context import cli_transaction, fail, print_json, session_factory
from meterplane.export import runner
from meterplane.export import service as export
from meterplane.export.schemas import TargetIn
from meterplane.kit.time import ensure_utc, utc_now
from meterplane.settings import get_settings

app = typer.Typer(
    help="Metering integration: hourly usage exported to your bucket.", no_args_is_help=True
)
console = Console(stderr=True)


def _moment(text: str) -> datetime:
    try:
        return ensure_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        fail(f"'{text}' is not an RFC 3339 time with a timezone (e.g. 2026-10-01T00:00:00Z)")


@app.command("status")
def status(
    provider_id: str = typer.Option(..., "--provider", help="Provider id."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """How far the export is, what is pending, and the error if it is failing."""
    with cli_transaction() as session:
        result = export.export_status(session, provider_id, settings=get_settings(), now=utc_now())
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if not result.configured:
        typer.echo("no export target is configured")
        return
    typer.echo(f"target: {result.kind} (generation {result.generation})")
    typer.echo(f"enabled: {'yes' if result.enabled else 'no'}")
    typer.echo(f"exported: {result.exported_from} .. {result.exported_through}")
    typer.echo(f"closed through: {result.closed_through} ({result.pending_hours} hours pending)")
    typer.echo(f"revised hours: {result.revised_hours}")
    typer.echo(f"last success: {result.last_success_at or 'never'}")
    if result.error is not None:
        typer.echo(
            f"FAILING ({result.consecutive_failures} runs): {result.error.code} at hour "
            f"{result.error.hour}: {result.error.message}"
        )
        typer.echo(f"next attempt: {result.next_attempt_at}")
        raise typer.Exit(2)


@app.command("run")
def run(
    provider_id: str = typer.Option(..., "--provider", help="Provider id."),
    start: str | None = typer.Option(None, "--from", help="First hour (RFC 3339, UTC)."),
    end: str | None = typer.Option(None, "--to", help="End of the range, exclusive."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Export due hours now, or backfill (and re-check) the closed hours of [--from, --to)."""
    if (start is None) != (end is None):
        fail("give --from and --to together")
    first = _moment(start) if start is not None else None
    last = _moment(end) if end is not None else None
    if first is not None and last is not None and first >= last:
        fail("--from must be before --to")
    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("export", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = runner.run_provider(
                session_factory(),
                provider_id,
                settings=get_settings(),
                now=utc_now(),
                start=first,
                end=last,
                progress=advance,
            )
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            fail(message)
    summary = {
        "hours_exported": report.hours_exported,
        "revisions": report.revisions,
        "records": report.records,
        "objects": report.objects,
        "exported_through": report.exported_through,
        "error": report.error_code and f"{report.error_code}: {report.error_message}",
        "failed_hour": report.failed_hour,
    }
    if as_json:
        print_json(summary)
    else:
        typer.echo(
            f"{report.hours_exported} hours exported, {report.revisions} revisions, "
            f"{report.records} records, {report.objects} objects; "
            f"exported through {report.exported_through}"
        )
        if report.error_code:
            typer.echo(
                f"error at hour {report.failed_hour}: {report.error_code}: {report.error_message}",
                err=True,
            )
    if report.error_code:
        raise typer.Exit(2)


@app.command("target")
def target(
    provider_id: str = typer.Option(..., "--provider", help="Provider id."),
    kind: str = typer.Option("s3", "--kind", help="s3, gcs, azure or local."),
    bucket: str | None = typer.Option(None, "--bucket"),
    prefix: str = typer.Option("", "--prefix"),
    region: str = typer.Option("us-east-1", "--region"),
    role_arn: str | None = typer.Option(None, "--role-arn", help="Role to assume (STS)."),
    external_id: str | None = typer.Option(None, "--external-id", envvar="EXPORT_EXTERNAL_ID"),
    access_key_id: str | None = typer.Option(
        None, "--access-key-id", envvar="EXPORT_ACCESS_KEY_ID"
    ),
    secret_access_key: str | None = typer.Option(
        None, "--secret-access-key", envvar="EXPORT_SECRET_ACCESS_KEY"
    ),
    service_account_file: Path | None = typer.Option(
        None, "--service-account-file", help="gcs: the service account key (JSON file)."
    ),
    container: str | None = typer.Option(None, "--container", help="azure: the container."),
    account_name: str | None = typer.Option(None, "--account-name", help="azure: the account."),
    account_key: str | None = typer.Option(None, "--account-key", envvar="EXPORT_ACCOUNT_KEY"),
    connection_string: str | None = typer.Option(
        None, "--connection-string", envvar="EXPORT_CONNECTION_STRING"
    ),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="Custom endpoint (needs the server setting)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="csv (default), jsonl or parquet."),
    use_gzip: bool = typer.Option(False, "--gzip"),
    layout: str = typer.Option("meterplane", "--layout", help="meterplane or omnistrate."),
    environment: str = typer.Option("PROD", "--environment"),
    show: bool = typer.Option(False, "--show", help="Only print the current target."),
) -> None:
    """Configure the export target (secrets are stored encrypted and never printed)."""
    settings = get_settings()
    with cli_transaction() as session:
        if show:
            print_json(
                export.target_out(export.get_target(session, provider_id), settings).model_dump(
                    mode="json"
                )
            )
            return
        try:
            key = service_account_file.read_text() if service_account_file else None
        except OSError as exc:
            fail(f"{service_account_file}: {exc.strerror or exc}")
        try:
            body = TargetIn.model_validate(
                {
                    "kind": kind,
                    "bucket": bucket,
                    "prefix": prefix,
                    "region": region,
                    "role_arn": role_arn,
                    "external_id": external_id,
                    "access_key_id": access_key_id,
                    "secret_access_key": secret_access_key,
                    "service_account_json": key,
                    "container": container,
                    "account_name": account_name,
                    "account_key": account_key,
                    "connection_string": connection_string,
                    "endpoint_url": endpoint_url,
                    "format": fmt,
                    "gzip": use_gzip,
                    "layout": layout,
                    "environment": environment,
                }
            )
        except ValueError as exc:
            fail(str(exc).splitlines()[-1] if str(exc) else "invalid target")
        result = export.configure_target(
            session, provider_id, body, settings=settings, now=utc_now()
        )
        print_json(export.target_out(result, settings).model_dump(mode="json"))
