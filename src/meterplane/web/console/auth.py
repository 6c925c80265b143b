"""Sign in and out."""

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from meterplane.users import service as users
from meterplane.web.console.base import PREFIX, console_router, db, now, safe_next
from meterplane.web.routing import redirect_to, render
from meterplane.web.sessions import flash, reset_session, session

router = console_router()


@router.get("/login")
def login_form(request: Request, next: str = PREFIX) -> Response:
    if session(request).get("user_id"):
        return redirect_to(request, safe_next(next))
    return render(
        request, "console/login.html", {"next": safe_next(next), "email": "", "error": None}
    )


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = PREFIX,
) -> Response:
    with db(request) as s:
        user = users.authenticate(s, email, password, now=now(request))
        identity = (user.id, user.session_epoch) if user is not None else None
    if identity is None:
        return render(
            request,
            "console/login.html",
            {
                "next": safe_next(next),
                "email": email,
                "error": "That email and password do not match an account. "
                "Check them and try again.",
            },
            status_code=401,
        )
    data = reset_session(request)
    data["user_id"], data["epoch"] = identity
    return redirect_to(request, safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    reset_session(request)
    flash(request, "You are signed out.", "info")
    return redirect_to(request, f"{PREFIX}/login")
