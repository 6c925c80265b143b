"""The HTTP application: API under /v1, OpenAPI at /openapi.json."""

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from meterplane import __version__
from meterplane.api.errors import install_error_handlers
from meterplane.api.routes import (
    catalog,
    customers,
    invoice_pdf,
    invoices,
    notifications,
    provider,
    usage,
)
from meterplane.api.routes import export as export_routes
from meterplane.api.routes import payments as payment_routes
from meterplane.kit.db import create_db_engine, make_session_factory
from meterplane.portal import api as portal_api
from meterplane.portal import pages as portal_pages
from meterplane.settings import Settings, get_settings
from meterplane.web.app import install_web


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Meterplane",
        version=__version__,
        description="Usage-based billing for SaaS providers running a deployment per customer.",
    )
    app.state.settings = settings
    app.state.session_factory = session_factory or make_session_factory(
        create_db_engine(settings.database_url)
    )
    app.state.clock = clock
    install_error_handlers(app)
    for module in (catalog, customers, invoices, invoice_pdf, notifications, provider, usage):
        app.include_router(module.router)
    app.include_router(export_routes.router)
    app.include_router(payment_routes.router)
    app.include_router(portal_api.router)
    app.include_router(portal_pages.assets)
    app.include_router(portal_pages.router)

    install_web(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
