from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meterplane.cli.context import cli_transaction, fail, print_json
from meterplane.kit.time import utc_now
from meterplane.metering import ingest, queries
from meterplane.metering.codecs import iter_file_chunks
from meterplane.settings import get_settings

app = typer.Typer(help="Usage samples and usage reports.", no_args_is_help=True)
console = Console(stderr=True)


def _count_rows(path: Path, fmt: str) -> int:
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if fmt == "csv" else lines


@app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    provider_id: str = typer.Option(..., "--provider", help="Provider that owns the instances."),
    fmt: str | None = typer.Option(None, "--format", help="csv or ndjson (default: by suffix)."),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import samples from CSV (header: instance_id,node_id,timestamp,cpu_cores,...) or NDJSON."""
    fmt = (fmt or ("csv" if path.suffix.lower() == ".csv" else "ndjson")).lower()
    if fmt not in ("csv", "ndjson"):
        fail(f"unsupported format '{fmt}' (csv or ndjson)")
    settings = get_settings()
    policy = ingest.IngestPolicy.from_settings(settings)
    total = _count_rows(path, fmt)
    accepted = 0
    offset = 0
    reasons: dict[str, int] = {}
    examples: list[str] = []
    with (
        path.open(newline="", encoding="utf-8") as stream,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json or not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("import", total=total)
        for batch in iter_file_chunks(stream, fmt, batch_size):
            with cli_transaction() as session:
                result = ingest.ingest_samples(
                    session, provider_id, batch, now=utc_now(), policy=policy
                )
            accepted += result.accepted
            for row in result.rejected:
                reasons[row.code] = reasons.get(row.code, 0) + 1
                if len(examples) < 5:
                    examples.append(f"row {offset + row.index + 1}: {row.code}: {row.message}")
            offset += len(batch.rows)
            progress.update(task, completed=offset)
    summary = {
        "rows": offset,
        "accepted": accepted,
        "rejected": offset - accepted,
        "rejected_by_code": reasons,
    }
    if as_json:
        print_json(summary)
        return
    typer.echo(f"{offset} rows: {accepted} accepted, {offset - accepted} rejected")
    for code, count in sorted(reasons.items()):
        typer.echo(f"  {code}: {count}")
    for line in examples:
        typer.echo(f"  e.g. {line}")
    if offset - accepted:
        typer.echo("rejected rows are listed by GET /v1/usage/rejections")


def _parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: '{value}' is not an RFC 3339 timestamp")
    if moment.tzinfo is None:
        fail(f"--{name}: '{value}' has no UTC offset (add Z or +00:00)")
    return moment


@app.command("show")
def show(
    provider_id: str = typer.Option(..., "--provider"),
    customer_id: str | None = typer.Option(None, "--customer"),
    instance_id: str | None = typer.Option(None, "--instance"),
    start: str = typer.Option(..., "--from", help="RFC 3339, e.g. 2026-10-01T00:00:00Z"),
    end: str = typer.Option(..., "--to"),
    granularity: str = typer.Option("day", "--granularity", help="hour, day or month"),
    dimension: str | None = typer.Option(None, "--dimension"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Usage in unit-hours, as GET /v1/usage returns it."""
    if granularity not in ("hour", "day", "month"):
        fail(f"--granularity must be hour, day or month, not '{granularity}'")
    with cli_transaction() as session:
        report = queries.usage_report(
            session,
            provider_id,
            customer_id=customer_id,
            instance_id=instance_id,
            start=_parse_time(start, "from"),
            end=_parse_time(end, "to"),
            granularity=granularity,  # type: ignore[arg-type]
            dimension=dimension,
        )
    if as_json:
        print_json(report.model_dump(mode="json", by_alias=True))
        return
    table = Table(title=f"usage ({granularity}, unit-hours)")
    table.add_column("from")
    keys = list(report.totals)
    for key in keys:
        table.add_column(f"{key} ({report.units[key]})", justify="right")
    for bucket in report.data:
        table.add_row(bucket.start.isoformat(), *(str(bucket.quantities[k]) for k in keys))
    table.add_row("total", *(str(report.totals[k]) for k in keys), style="bold")
    Console().print(table)
