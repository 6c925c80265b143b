"""Serve ``web/static`` and the npm packages (htmx, Chart.js) from ``node_modules``."""

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import PlainTextResponse

from meterplane.web.config import get_web_settings

STATIC = Path(__file__).resolve().parent / "static"
# URL folder under /static/vendor/ → the package folder that ships the browser builds.
VENDOR_PACKAGES = {"htmx": Path("htmx.org") / "dist", "chart.js": Path("chart.js") / "dist"}


def install_static(app: FastAPI) -> None:
    """Mount /static and /static/vendor/<package>; a missing package answers with how to fix it."""
    vendor = get_web_settings().web_vendor_dir
    for name, folder in VENDOR_PACKAGES.items():
        directory = vendor / folder
        if directory.is_dir():
            app.mount(
                f"/static/vendor/{name}", StaticFiles(directory=directory), name=f"vendor-{name}"
            )
        else:
            app.add_api_route(
                f"/static/vendor/{name}/{{path:path}}",
                _missing(name, directory),
                methods=["GET"],
                include_in_schema=False,
            )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _missing(name: str, directory: Path) -> Callable[[str], PlainTextResponse]:
    def missing(path: str) -> PlainTextResponse:
        return PlainTextResponse(
            f"{name} is not installed at {directory}: run `make setup` (npm ci).", status_code=404
        )

    return missing
