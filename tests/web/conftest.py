"""Console browser tests: fixtures from tests/browser.py, plus a signed-in provider user."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page
from sqlalchemy.orm import Session, sessionmaker

from meterplane.users.models import Role
from meterplane.users.service import create_user
from tests.browser import live_app, live_server, screenshot  # noqa: F401
from tests.conftest import Catalogue, Clock, Tenant, build_catalogue, register_instance
from tests.invoicing.helpers import AFTER_OCT, OCT, close, hourly_samples, ingest, invoices

PASSWORD = "correct horse battery"


@dataclass
class Login:
    email: str
    password: str
    provider_id: str


@pytest.fixture
def make_user(factory: sessionmaker[Session], clock: Clock) -> Callable[..., Login]:
    def _make(tenant: Tenant, email: str, role: Role = Role.owner) -> Login:
        with factory() as session, session.begin():
            create_user(
                session,
                tenant.provider_id,
                email=email,
                password=PASSWORD,
                role=role,
                actor="test",
                now=clock(),
            )
        return Login(email, PASSWORD, tenant.provider_id)

    return _make


def sign_in(tab: Page, base_url: str, login: Login, *, next_path: str = "/console") -> None:
    """Sign in through the login form, as a person would."""
    tab.goto(f"{base_url}{next_path}")
    tab.get_by_label("Email").fill(login.email)
    tab.get_by_label("Password").fill(login.password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"**{next_path}")


@dataclass
class Billed:
    """Two customers of one provider with a closed October: two invoices pending approval."""

    tenant: Tenant
    first: Catalogue
    second: Catalogue
    invoice_ids: dict[str, str]  # customer name → invoice id


@pytest.fixture
def billed(client: TestClient, tenant: Tenant, clock: Clock) -> Billed:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    first = build_catalogue(client, tenant)
    second = build_catalogue(client, tenant, suffix=" Two")
    register_instance(client, tenant, first.subscription_id, "db-1")
    register_instance(client, tenant, first.subscription_id, "db-2")
    register_instance(client, tenant, second.subscription_id, "kafka-1")
    clock.set(AFTER_OCT)
    ingest(
        client,
        tenant,
        hourly_samples("db-1", OCT, 72, cpu=2)
        + hourly_samples("db-2", OCT + timedelta(days=10), 48, cpu="0.5", memory="1")
        + hourly_samples("kafka-1", OCT + timedelta(days=20), 24, cpu=4, memory="16"),
    )
    close(client, tenant)
    names = {first.customer_id: "Globex", second.customer_id: "Globex Two"}
    return Billed(
        tenant,
        first,
        second,
        {names[row["customer_id"]]: row["id"] for row in invoices(client, tenant)},
    )
