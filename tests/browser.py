"""Browser-test fixtures shared by tests/web (console) and tests/portal.

Use them from a conftest.py::

    from tests.browser import live_app, live_server, screenshot  # noqa: F401

(``browser`` and ``page`` are registered once, in tests/conftest.py.)

- ``live_server``: the whole app (API, console, portal) served by uvicorn on 127.0.0.1 on a
  free port, against the test database of ``database_url`` (so on SQLite and PostgreSQL),
  with the test's ``clock``; its value is the base URL (``http://127.0.0.1:PORT``). The
  database is emptied after each test (the ``factory`` fixture), the server lives for the run.
- ``page``: a Playwright page of Debian Chromium (``/usr/bin/chromium``, never a downloaded
  browser) in a fresh context (no cookies), 1280×860, default timeout 10 s.
- ``screenshot(page, name)``: a full-page PNG in ``test-artifacts/web/<name>.png``.
"""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from meterplane.api.app import create_app
from meterplane.kit.db import make_session_factory
from meterplane.settings import Settings
from tests.conftest import ARTIFACTS, Clock

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ARTIFACTS / "web"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


@pytest.fixture(scope="session")
def live_app(database_url: str, engine: Engine) -> Iterator[tuple[FastAPI, str]]:
    """One uvicorn server per database for the whole run; tests set its clock."""
    app = create_app(
        Settings(database_url=database_url), session_factory=make_session_factory(engine)
    )
    port = _free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def live_server(
    live_app: tuple[FastAPI, str], factory: sessionmaker[Session], clock: Clock
) -> Iterator[str]:
    app, url = live_app
    app.state.clock = clock
    yield url
    app.state.clock = None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y chromium (never playwright install)"
        )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[Any] = []
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under test-artifacts/web/ (one per name; the last test run wins)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
