import json
import shlex
from datetime import datetime, timedelta

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from meterplane.demo.billing import run_billing_cycle
from meterplane.demo.seed import (
    CUSTOMERS,
    DEFAULT_DAYS,
    DEMO_PROVIDER_NAME,
    INSTANCES,
    PLANS,
    SERVICES,
    DemoResult,
    Story,
    seed_demo,
    storage_at,
)
from meterplane.kit import migrate
from meterplane.kit.db import create_db_engine, make_session_factory, transaction
from meterplane.kit.time import INTERVAL_SECONDS, day_floor, floor_to, utc_now
from meterplane.metering.ingest import IngestPolicy
from meterplane.portal.models import TokenKind
from meterplane.portal.service import link_url, mint_token
from meterplane.settings import get_settings

console = Console(stderr=True)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def curl_examples(result: DemoResult, base_url: str, *, now: datetime, days: int) -> list[str]:
    """Ready-to-copy commands against the seeded demo."""
    auth = f"Authorization: Bearer {result.admin_key}"
    customer_id = result.customer_ids[CUSTOMERS[0].name]
    start = day_floor(now) - timedelta(days=min(days, 7))
    end = day_floor(now) + timedelta(days=1)
    usage_url = (
        f"{base_url}/v1/usage?customer_id={customer_id}"
        f"&from={_iso(start)}&to={_iso(end)}&granularity=day"
    )
    # What the first node of the first instance holds right now: re-sending it changes nothing.
    life = Story(result.origin, days).instance(INSTANCES[0])
    node = life.nodes[0]
    interval = floor_to(now, INTERVAL_SECONDS)
    held = node.size_at(interval)
    sample = {
        "instance_id": life.spec.instance_id,
        "node_id": node.node_id,
        "timestamp": _iso(interval),
        "cpu_cores": str(held.cpu_cores),
        "memory_gib": str(held.memory_gib),
        "storage_gib": str(storage_at(node, held, interval)),
    }
    body = json.dumps({"samples": [sample]}, separators=(",", ":"))
    return [
        f"curl -s -H {shlex.quote(auth)} {shlex.quote(usage_url)}",
        f"curl -s -X POST -H {shlex.quote(auth)} -H 'Content-Type: application/json' "
        f"{base_url}/v1/usage/samples -d {shlex.quote(body)}",
        f"curl -s -H {shlex.quote(auth)} '{base_url}/v1/usage/rejections?limit=5'",
    ]


def demo(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    days: int = typer.Option(
        DEFAULT_DAYS, "--days", min=1, help="Usage history of a new demo, in days."
    ),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API after seeding."),
) -> None:
    """Migrate, seed the demo provider "Demo Cloud Inc." (idempotent), print a key, serve."""
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    migrate.upgrade(engine)
    now = utc_now()
    with Progress(
        SpinnerColumn(),
        TextColumn("seeding the demo: {task.completed:,} usage samples"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("seed", total=None)
        result = seed_demo(
            make_session_factory(engine),
            now=now,
            days=days,
            policy=IngestPolicy.from_settings(settings),
            on_batch=lambda count: progress.advance(task, count),
        )
    billing = run_billing_cycle(make_session_factory(engine), result.provider_id, now=now)
    base_url = f"http://{host}:{port}"
    portal_customer = CUSTOMERS[0].name
    with transaction(make_session_factory(engine)) as session:
        minted = mint_token(
            session,
            result.provider_id,
            result.customer_ids[portal_customer],
            kind=TokenKind.link,
            now=now,
        )
        portal_link = link_url(base_url, minted.row, minted.token)
    engine.dispose()

    state = "created" if result.created else "found (topped up with the usage since the last run)"
    clouds = ", ".join(sorted({spec.cloud for spec in INSTANCES}))
    lines = [
        "",
        f"Meterplane demo: provider '{DEMO_PROVIDER_NAME}' {state}",
        f"  database     {engine.url.render_as_string(hide_password=True)}",
        f"  catalogue    {len(SERVICES)} services, {len(PLANS)} plans, "
        f"{len(result.customer_ids)} customers, {len(result.instance_ids)} instances ({clouds})",
        f"  usage        {result.samples_accepted:,} of {result.samples_sent:,} samples accepted, "
        f"{_iso(result.usage_start)} .. {_iso(result.usage_end)}",
        f"  invoices     {billing.period}: {billing.issued} issued, {billing.pending} awaiting "
        "approval in Manage Invoices"
        if billing.period
        else "  invoices     none yet (the first month has not ended)",
        f"  rejections   {len(result.rejections)} example rejected samples sent this run"
        if result.rejections
        else "  rejections   example rejected samples already stored",
        "",
        f"  URL          {base_url}   (interactive API docs: {base_url}/docs)",
        f"  provider id  {result.provider_id}",
        f"  admin key    {result.admin_key}",
        "               (minted for this run; demo keys of earlier runs are revoked)",
        f"  console      {base_url}/console   (sign in as {result.console_email}, "
        f"password {result.console_password}; new each run)",
        f"  portal       {portal_link}",
        f"               ({portal_customer}'s billing portal; the link works once, for an hour)",
        "",
        "Try it:",
        "",
    ]
    titles = (
        f"# Daily usage of one customer ({CUSTOMERS[0].name}), all its instances",
        "# Send a sample (what an agent on a node does every 5 minutes)",
        "# Rows refused at ingest, with their reasons",
    )
    for title, command in zip(
        titles, curl_examples(result, base_url, now=now, days=days), strict=True
    ):
        lines += [title, command, ""]
    typer.echo("\n".join(lines))
    if not serve:
        return

    import uvicorn

    typer.echo(f"Serving on {base_url} (Ctrl-C to stop); `make demo` again keeps this data.")
    uvicorn.run(
        "meterplane.api.app:create_app", factory=True, host=host, port=port, log_level="info"
    )
