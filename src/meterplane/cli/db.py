import typer

from meterplane.kit import migrate
from meterplane.kit.db import create_db_engine
from meterplane.settings import get_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    engine = create_db_engine(get_settings().database_url)
    migrate.upgrade(engine, revision)
    typer.echo(f"database at {revision}: {engine.url.render_as_string(hide_password=True)}")


@app.command("check")
def check() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check(create_db_engine(get_settings().database_url))
    typer.echo("models and migrations agree")
