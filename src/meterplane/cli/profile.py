"""``meterplane profile``: the provider's business profile and logo, printed on invoices."""

import mimetypes
from pathlib import Path
from typing import Any

import typer

from meterplane.cli.billing import provider_option, require_provider
from meterplane.cli.context import cli_transaction, fail, print_json
from meterplane.kit.time import utc_now
from meterplane.tenancy import profile as service

app = typer.Typer(help="The business profile and logo printed on invoices.", no_args_is_help=True)
ACTOR = "cli:profile"


def _json(profile: service.Profile) -> dict[str, Any]:
    """The profile as ``GET /v1/provider/profile`` shows it."""
    return {
        "provider_id": profile.provider_id,
        "name": profile.name,
        "legal_name": profile.legal_name,
        "address": profile.address,
        "tax_id": profile.tax_id,
        "support_email": profile.support_email,
        "logo_content_type": profile.logo_content_type,
        "has_logo": profile.has_logo,
    }


def _print(profile: service.Profile, as_json: bool) -> None:
    if as_json:
        print_json(_json(profile))
        return
    typer.echo(f"provider       {profile.provider_id} ({profile.name})")
    typer.echo(f"legal name     {profile.legal_name or '-'}")
    address = (profile.address or "-").replace("\n", "\n               ")
    typer.echo(f"address        {address}")
    typer.echo(f"tax id         {profile.tax_id or '-'}")
    typer.echo(f"support email  {profile.support_email or '-'}")
    typer.echo(f"logo           {profile.logo_content_type or '-'}")


@app.command("show")
def show(
    provider_id: str = provider_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The business profile."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        profile = service.get_profile(session, provider_id)
    _print(profile, as_json)


@app.command("set")
def set_profile(
    provider_id: str = provider_option(),
    legal_name: str | None = typer.Option(None, "--legal-name"),
    address: str | None = typer.Option(
        None, "--address", help="Lines separated by newlines or ' | '."
    ),
    tax_id: str | None = typer.Option(None, "--tax-id"),
    support_email: str | None = typer.Option(None, "--support-email"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change the given fields and keep the others; an empty value ('') clears a field."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        current = service.get_profile(session, provider_id)
        if address is not None:
            address = "\n".join(part.strip() for part in address.split(" | "))
        profile = service.update_profile(
            session,
            provider_id,
            legal_name=current.legal_name if legal_name is None else legal_name,
            address=current.address if address is None else address,
            tax_id=current.tax_id if tax_id is None else tax_id,
            support_email=current.support_email if support_email is None else support_email,
            actor=ACTOR,
            now=utc_now(),
        )
    _print(profile, as_json)


@app.command("logo")
def logo(
    file: Path = typer.Argument(..., help="A PNG or SVG file, at most 512 KiB."),
    provider_id: str = provider_option(),
) -> None:
    """Upload the logo printed on invoices (its type is checked from its content)."""
    provider_id = require_provider(provider_id)
    try:
        with file.open("rb") as handle:
            data = handle.read(service.LOGO_MAX_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    guessed, _ = mimetypes.guess_type(file.name)
    content_type = guessed if guessed in service.LOGO_TYPES else None
    with cli_transaction() as session:
        profile = service.set_logo(
            session, provider_id, data, content_type, actor=ACTOR, now=utc_now()
        )
    typer.echo(f"logo set ({profile.logo_content_type}, {len(data)} bytes)")


@app.command("remove-logo")
def remove_logo(provider_id: str = provider_option()) -> None:
    """Remove the logo."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        service.delete_logo(session, provider_id, actor=ACTOR, now=utc_now())
    typer.echo("logo removed")


@app.command("export-logo")
def export_logo(
    out: Path = typer.Argument(..., help="File to write the logo to."),
    provider_id: str = provider_option(),
) -> None:
    """Write the stored logo to a file."""
    provider_id = require_provider(provider_id)
    with cli_transaction() as session:
        stored = service.get_logo(session, provider_id)
    try:
        out.write_bytes(stored.data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"wrote {out} ({stored.content_type}, {len(stored.data)} bytes)")
