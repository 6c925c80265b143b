"""What every console page shares: its route class, the signed-in user, the database, the clock."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.db import transaction
from meterplane.kit.errors import Forbidden
from meterplane.kit.time import utc_now
from meterplane.settings import Settings
from meterplane.tenancy.service import get_provider
from meterplane.users import service as users
from meterplane.users.models import Role
from meterplane.web.routing import Redirect, WebRoute
from meterplane.web.sessions import session

PREFIX = "/console"
COOKIE = "mp_console"


class ConsoleRoute(WebRoute):
    session_cookie = COOKIE
    template_folders = (Path(__file__).resolve().parent / "templates",)
    home_path = PREFIX
    brand = "Meterplane Console"


def console_router() -> APIRouter:
    return APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def factory(request: Request) -> sessionmaker[Session]:
    value: sessionmaker[Session] = request.app.state.session_factory
    return value


def app_settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def now(request: Request) -> datetime:
    clock = request.app.state.clock
    moment: datetime = clock() if clock is not None else utc_now()
    return moment


@contextmanager
def db(request: Request) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back on an error."""
    with transaction(factory(request)) as s:
        yield s


@dataclass(frozen=True)
class Me:
    """The signed-in console user; every query below is scoped by ``provider_id``."""

    user_id: str
    email: str
    role: Role
    provider_id: str
    provider_name: str

    @property
    def actor(self) -> str:
        return f"user:{self.email}"

    def can(self, permission: str) -> bool:
        return users.can(self.role, permission)

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(
                f"Your role ({self.role.value}) does not allow this. Ask an owner of "
                f"{self.provider_name} for the billing or owner role.",
                code="insufficient_role",
            )


def signed_in(request: Request) -> Me:
    """The session's user, or a redirect to the login page (which comes back here)."""
    data = session(request)
    user_id, epoch = data.get("user_id"), data.get("epoch")
    if isinstance(user_id, str) and isinstance(epoch, int):
        with db(request) as s:
            user = users.find_session_user(s, user_id, epoch)
            if user is not None:
                provider = get_provider(s, user.provider_id)
                me = Me(user.id, user.email, user.role, provider.id, provider.name)
                request.state.me = me
                return me
        data.pop("user_id", None)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise Redirect(f"{PREFIX}/login?next={quote(target)}")


CurrentUser = Annotated[Me, Depends(signed_in)]


def safe_next(target: str | None) -> str:
    """Only local console paths: never redirect a login to another site."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX
