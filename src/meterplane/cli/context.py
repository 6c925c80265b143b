"""What every CLI command shares: settings, a database session, and one-line failures."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, NoReturn

import typer
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.db import create_db_engine, make_session_factory
from meterplane.kit.errors import MeterplaneError
from meterplane.settings import get_settings


@lru_cache
def session_factory() -> sessionmaker[Session]:
    return make_session_factory(create_db_engine(get_settings().database_url))


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def cli_transaction() -> Iterator[Session]:
    """A transaction whose domain errors end the command with a one-line reason."""
    try:
        with session_factory()() as session, session.begin():
            yield session
    except MeterplaneError as exc:
        fail(f"{exc.message} ({exc.code})")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
