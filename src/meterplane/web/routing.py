"""``WebRoute``: sessions, CSRF, security headers and HTML error pages for every web page."""

import json
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from meterplane.kit.errors import MeterplaneError
from meterplane.web.sessions import (
    CsrfRejected,
    check_csrf,
    csrf_token,
    load_session,
    pop_flashes,
    save_session,
)
from meterplane.web.templating import templates

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    409: "Conflict",
    422: "Please check your input",
    500: "Something went wrong",
}


class Redirect(Exception):
    """Raise to answer with a 303 See Other to ``url`` (after a POST, or to the login page)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class WebRoute(APIRoute):
    """A route of a browser front end; subclass it per front end (see ``meterplane.web``)."""

    session_cookie: str = "mp_session"
    template_folders: tuple[Path, ...] = ()
    content_security_policy: str = DEFAULT_CSP
    home_path: str = "/"
    brand: str = "Meterplane"

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = self

        async def web_handler(request: Request) -> Response:
            data = load_session(request, route.session_cookie)
            before = json.dumps(data, sort_keys=True)
            request.state.session = data
            request.state.web_route = route
            try:
                if request.method not in SAFE_METHODS:
                    content_type = request.headers.get("content-type", "")
                    if content_type.startswith(FORM_TYPES):
                        # Parsed here, so sync handlers can read it: ``form_of(request)``.
                        request.state.form = await request.form()
                    await check_csrf(request)
                response = await handler(request)
            except Redirect as redirect:
                response = redirect_to(request, redirect.url)
            except CsrfRejected:
                response = error_page(
                    request,
                    403,
                    "This form has expired or did not come from this site, so nothing was "
                    "changed. Go back, reload the page and try again.",
                )
            except MeterplaneError as error:
                response = error_page(request, error.status_code, error.message)
            except RequestValidationError as error:
                response = error_page(request, 422, _validation_message(error))
            except HTTPException as error:
                response = error_page(request, error.status_code, str(error.detail))
            except Exception:
                log.exception("web page %s %s failed", request.method, request.url.path)
                response = error_page(
                    request, 500, "An unexpected error stopped this page; it has been logged."
                )
            if json.dumps(data, sort_keys=True) != before:
                save_session(request, response, route.session_cookie, data)
            response.headers.setdefault("Content-Security-Policy", route.content_security_policy)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return web_handler


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ())[1:]) or "input"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "The form is incomplete."


def redirect_to(request: Request, url: str) -> Response:
    """303 to ``url``; for htmx requests, an ``HX-Redirect`` so the whole page navigates."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a template with the shared context: request, CSRF token, flashes, static()."""
    route: WebRoute | None = getattr(request.state, "web_route", None)
    folders = route.template_folders if route is not None else ()
    full = {
        "request": request,
        "csrf_token": csrf_token(request) if hasattr(request.state, "session") else "",
        "flashes": pop_flashes(request) if hasattr(request.state, "session") else [],
        "static": static_url,
        "brand": route.brand if route is not None else "Meterplane",
        "home_path": route.home_path if route is not None else "/",
        "current_path": request.url.path,
        **(context or {}),
    }
    html = templates(folders).get_template(name).render(full)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The HTML error page (404, 403, …) with a human message and a way back."""
    return render(
        request,
        "error.html",
        {
            "status_code": status_code,
            "title": TITLES.get(status_code, "Something went wrong"),
            "message": message,
        },
        status_code=status_code,
    )


def form_of(request: Request) -> FormData:
    """The submitted form of a POST (parsed before the handler; empty for other bodies)."""
    form: FormData = getattr(request.state, "form", None) or FormData()
    return form


def static_url(path: str) -> str:
    return f"/static/{path.lstrip('/')}"
