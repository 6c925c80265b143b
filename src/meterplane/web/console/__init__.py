"""The provider console at /console, for signed-in provider users (see ``meterplane.web``)."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from meterplane.web.console import access, auth, customers, dashboard, invoices, pricing, settings
from meterplane.web.console.base import console_router
from meterplane.web.routing import error_page

fallback = console_router()


@fallback.get("/{path:path}")
def not_found(request: Request, path: str) -> Response:
    return error_page(request, 404, "There is no console page at this address.")


def console_routes() -> list[APIRouter]:
    """Every console router, mounted by ``meterplane.web.app.install_web`` (fallback last)."""
    return [
        auth.router,
        dashboard.router,
        invoices.router,
        customers.router,
        pricing.router,
        settings.router,
        access.router,
        fallback,
    ]
