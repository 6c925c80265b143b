"""Request plumbing: the database, the clock and who is calling."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.errors import Unauthorized
from meterplane.kit.time import utc_now
from meterplane.settings import Settings
from meterplane.tenancy.models import ApiKeyScope
from meterplane.tenancy.service import Caller, authenticate, require_scope


def session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def now(request: Request) -> datetime:
    clock = request.app.state.clock
    moment: datetime = clock() if clock is not None else utc_now()
    return moment


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back on error."""
    with factory() as session, session.begin():
        yield session


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(
            "send your API key as 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    with unit_of_work(session_factory(request)) as session:
        return authenticate(session, secret.strip())


def admin_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    require_scope(caller, ApiKeyScope.admin)
    return caller


def ingest_caller(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    require_scope(caller, ApiKeyScope.ingest)
    return caller


Admin = Annotated[Caller, Depends(admin_caller)]
Ingest = Annotated[Caller, Depends(ingest_caller)]
Factory = Annotated[sessionmaker[Session], Depends(session_factory)]
Now = Annotated[datetime, Depends(now)]
AppSettings = Annotated[Settings, Depends(settings)]
