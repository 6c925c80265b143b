"""The ``meterplane`` command."""

import typer

from meterplane.cli import (
    apply,
    audit,
    billing,
    db,
    demo,
    invoices,
    outbox,
    plans,
    provider,
    serve,
    usage,
    worker,
)
from meterplane.cli import export as export_cli
from meterplane.cli import payments as payments_cli
from meterplane.users import cli as users_cli

app = typer.Typer(
    name="meterplane",
    help="Usage-based billing for SaaS providers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(export_cli.app, name="export")
app.add_typer(provider.app, name="provider")
provider.app.add_typer(users_cli.app, name="user")
app.add_typer(usage.app, name="usage")
app.add_typer(plans.app, name="plans")
app.add_typer(audit.app, name="audit")
app.add_typer(billing.app, name="billing")
app.add_typer(invoices.app, name="invoices")
app.add_typer(payments_cli.app, name="payments")
app.add_typer(outbox.app, name="outbox")
app.add_typer(outbox.webhooks_app, name="webhooks")
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("apply")(apply.apply)
app.command("worker")(worker.worker)

if __name__ == "__main__":
    app()
