"""``meterplane invoices pdf``: write an invoice's PDF to a file."""

from pathlib import Path

import typer

from meterplane.cli.billing import provider_option, require_provider
from meterplane.cli.context import cli_transaction, fail


def pdf(
    invoice_id: str = typer.Argument(..., help="The invoice id (inv_…)."),
    provider_id: str = provider_option(),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="File to write; '-' for stdout (default: <number or id>.pdf here).",
        show_default=False,
    ),
) -> None:
    """Render an invoice as its customer receives it (drafts are marked "DRAFT — not issued")."""
    # WeasyPrint takes a second to import: only this command needs it.
    from meterplane.invoicing.pdf import load_document, render_document

    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        document = load_document(session, provider_id, invoice_id)
    content = render_document(document)
    if out is not None and str(out) == "-":
        typer.get_binary_stream("stdout").write(content)
        return
    target = out or Path(document.filename)
    try:
        target.write_bytes(content)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    typer.echo(f"wrote {target} ({len(content)} bytes)", err=True)
