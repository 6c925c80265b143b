"""Plug the browser front ends into the HTTP application."""

from fastapi import FastAPI

from meterplane.web.console import console_routes
from meterplane.web.static import install_static


def install_web(app: FastAPI) -> None:
    """Static files (app.css, app.js, vendor packages) and the provider console."""
    for router in console_routes():
        app.include_router(router)
    install_static(app)
