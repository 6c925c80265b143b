"""Users and API keys of the provider (owners only change them)."""

from typing import Annotated

from fastapi import Form, Request
from sqlalchemy import select
from starlette.responses import Response

from meterplane.kit.errors import InvalidInput
from meterplane.tenancy.models import ApiKey, ApiKeyScope
from meterplane.tenancy.service import create_api_key, revoke_api_key
from meterplane.users import service as users
from meterplane.users.models import Role
from meterplane.web.console.base import PREFIX, CurrentUser, Me, console_router, db, now
from meterplane.web.routing import redirect_to, render
from meterplane.web.sessions import flash

router = console_router()


def _page(request: Request, me: Me, new_key: str | None = None, status_code: int = 200) -> Response:
    with db(request) as s:
        keys = s.scalars(
            select(ApiKey)
            .where(ApiKey.provider_id == me.provider_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
        ).all()
        return render(
            request,
            "console/access.html",
            {
                "me": me,
                "active": "access",
                "users": users.list_users(s, me.provider_id),
                "keys": keys,
                "roles": list(Role),
                "scopes": list(ApiKeyScope),
                "new_key": new_key,
            },
            status_code=status_code,
        )


@router.get("/access")
def access(request: Request, me: CurrentUser) -> Response:
    return _page(request, me)


@router.post("/access/keys")
def create_key(
    request: Request,
    me: CurrentUser,
    name: Annotated[str, Form(max_length=200)],
    scope: Annotated[str, Form()],
) -> Response:
    me.require("api_keys")
    try:
        chosen = ApiKeyScope(scope)
    except ValueError:
        raise InvalidInput(f"unknown scope '{scope}'", code="invalid_scope") from None
    if not name.strip():
        raise InvalidInput("give the key a name", code="invalid_name")
    with db(request) as s:
        issued = create_api_key(s, me.provider_id, chosen, name=name.strip(), now=now(request))
        secret = issued.secret
    # Shown once, in this response: the secret never goes into the session cookie.
    flash(request, f"API key {name.strip()} created. Copy it now: it is shown only once.")
    return _page(request, me, new_key=secret)


@router.post("/access/keys/{key_id}/revoke")
def revoke_key(request: Request, me: CurrentUser, key_id: str) -> Response:
    me.require("api_keys")
    with db(request) as s:
        key = revoke_api_key(s, me.provider_id, key_id, now=now(request))
        name = key.name
    flash(request, f"API key {name} is revoked: requests with it are refused from now on.")
    return redirect_to(request, f"{PREFIX}/access")


@router.post("/access/users")
def add_user(
    request: Request,
    me: CurrentUser,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form()],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    me.require("users")
    with db(request) as s:
        user = users.create_user(
            s,
            me.provider_id,
            email=email,
            password=password,
            role=Role(role),
            actor=me.actor,
            now=now(request),
        )
        address = user.email
    flash(request, f"{address} can now sign in. Send them their password over a safe channel.")
    return redirect_to(request, f"{PREFIX}/access")


@router.post("/access/users/{user_id}/role")
def change_role(
    request: Request, me: CurrentUser, user_id: str, role: Annotated[str, Form()]
) -> Response:
    me.require("users")
    with db(request) as s:
        user = users.change_role(
            s, me.provider_id, user_id, Role(role), actor=me.actor, now=now(request)
        )
        address = user.email
    flash(request, f"{address} is now {role}.")
    return redirect_to(request, f"{PREFIX}/access")


@router.post("/access/users/{user_id}/remove")
def remove_user(request: Request, me: CurrentUser, user_id: str) -> Response:
    me.require("users")
    with db(request) as s:
        users.remove_user(s, me.provider_id, user_id, actor=me.actor, now=now(request))
    flash(request, "The user is removed and signed out everywhere.")
    return redirect_to(request, f"{PREFIX}/access")
