"""The provider console at /console, for signed-in provider users (see ``meterplane.web``)."""

from fastapi import APIRouter

from meterplane.web.console import auth, dashboard


def console_routes() -> list[APIRouter]:
    """Every console router, mounted by ``meterplane.web.app.install_web``."""
    return [auth.router, dashboard.router]
