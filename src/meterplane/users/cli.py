"""``meterplane provider user …``: console logins from the command line."""

import sys

import typer

from meterplane.cli.context import cli_transaction, fail, print_json
from meterplane.kit.time import utc_now
from meterplane.users import service
from meterplane.users.models import Role

app = typer.Typer(
    help="Console users of a provider (owner, billing, viewer).", no_args_is_help=True
)


@app.command("add")
def add(
    provider_id: str = typer.Option(..., "--provider", help="The provider's id."),
    email: str = typer.Option(..., "--email"),
    role: Role = typer.Option(Role.owner, "--role"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a console login; the password is prompted for (or read from stdin), never an argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("the password is empty")
    with cli_transaction() as session:
        user = service.create_user(
            session,
            provider_id,
            email=email,
            password=password,
            role=role,
            actor="cli",
            now=utc_now(),
        )
        out = {"user_id": user.id, "email": user.email, "role": user.role.value}
    if as_json:
        print_json(out)
    else:
        typer.echo(f"user {out['user_id']} {out['email']} ({out['role']}) may sign in at /console")


@app.command("list")
def list_users(provider_id: str = typer.Option(..., "--provider")) -> None:
    """The provider's console users."""
    with cli_transaction() as session:
        for user in service.list_users(session, provider_id):
            typer.echo(f"{user.id}  {user.email}  {user.role.value}")
