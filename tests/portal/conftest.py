"""Portal browser tests: the whole app served by uvicorn with Stripe behind the test front.

The live server's settings point Stripe at ``tests/payments/stripe_front.py`` (localstripe per
connected account). localstripe's Stripe.js stand-in ignores ``stripeAccount`` and talks to
the server it was loaded from, so each test points ``stripe_js_url`` at its connected
account's own localstripe (real Stripe.js would send the ``Stripe-Account`` header instead).
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from meterplane.api.app import create_app
from meterplane.kit.db import make_session_factory
from meterplane.payments.gateway import StripeGateway
from meterplane.settings import Settings
from tests.browser import _free_port, _Server, screenshot  # noqa: F401
from tests.conftest import ARTIFACTS, Catalogue, Clock, Tenant, build_catalogue
from tests.payments.conftest import (
    CLIENT_ID,
    PLATFORM_KEY,
    WEBHOOK_SECRET,
    connect_account,
    front,  # noqa: F401
    issue_invoice,
)
from tests.payments.stripe_front import StripeFront

SCREENSHOTS = ARTIFACTS / "portal"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "portal" in item.path.parts:
            item.add_marker(pytest.mark.filterwarnings("ignore:Bare functions are deprecated"))


@pytest.fixture(scope="session")
def portal_app(
    database_url: str,
    engine: Engine,
    front: StripeFront,  # noqa: F811
) -> Iterator[tuple[FastAPI, str]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url,
        secret_key="portal-test-secret",
        portal_base_url=url,
        stripe_secret_key=PLATFORM_KEY,
        stripe_publishable_key="pk_test_platform",
        stripe_client_id=CLIENT_ID,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=front.url,
        stripe_connect_base=front.url,
        stripe_js_url=f"{front.url}/js.stripe.com/v3/",
        stripe_send_off_session=False,
    )
    app = create_app(settings, session_factory=make_session_factory(engine))
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="portal-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal test server did not start")
        time.sleep(0.02)
    yield app, url
    server.should_exit = True
    thread.join(timeout=5)


@dataclass
class Portal:
    """The live app, an API client on it, and helpers a test needs."""

    app: FastAPI
    url: str
    api: httpx.Client
    front: StripeFront
    factory: sessionmaker[Session]
    clock: Clock

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.settings
        return settings

    @property
    def gateway(self) -> StripeGateway:
        return StripeGateway(self.settings)

    def use_account(self, account: str) -> None:
        """Stripe.js from the connected account's own localstripe (see the module docstring)."""
        self.settings.stripe_js_url = f"{self.front.accounts[account].url}/js.stripe.com/v3/"

    def link(self, tenant: Tenant, customer_id: str) -> str:
        response = self.api.post(
            f"/v1/customers/{customer_id}/portal-sessions", headers=tenant.admin
        )
        assert response.status_code == 201, response.text
        url: str = response.json()["url"]
        return url

    def get(self, tenant: Tenant, path: str, **params: Any) -> Any:
        response = self.api.get(path, params=params, headers=tenant.admin)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def portal(
    portal_app: tuple[FastAPI, str],
    factory: sessionmaker[Session],
    clock: Clock,
    front: StripeFront,  # noqa: F811
) -> Iterator[Portal]:
    app, url = portal_app
    app.state.clock = clock
    original_js = app.state.settings.stripe_js_url
    with httpx.Client(base_url=url, timeout=30) as api:
        yield Portal(app, url, api, front, factory, clock)
    app.state.settings.stripe_js_url = original_js
    app.state.clock = None


@dataclass
class Billed:
    tenant: Tenant
    catalogue: Catalogue
    account: str
    invoice_id: str
    total: str


@pytest.fixture
def billed(portal: Portal, tenant: Tenant) -> Billed:
    """A connected provider whose customer has an issued, unpaid October invoice (no card)."""
    account = connect_account(portal.api, tenant, portal.front)  # type: ignore[arg-type]
    portal.use_account(account)
    catalogue = build_catalogue(portal.api, tenant)  # type: ignore[arg-type]
    invoice_id, total = issue_invoice(
        portal.api,  # type: ignore[arg-type]
        tenant,
        catalogue,
        portal.clock,
        portal.factory,
    )
    return Billed(tenant, catalogue, account, invoice_id, total)


def shot(tab: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
