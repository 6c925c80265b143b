"""Every database test runs twice: on a SQLite file and on a fresh PostgreSQL database.

The PostgreSQL database is created per test run (and per xdist worker) with a unique name,
built by the Alembic migrations, and dropped at the end.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from meterplane.api.app import create_app
from meterplane.catalog.models import Dimension
from meterplane.kit import migrate
from meterplane.kit.db import Base, create_db_engine, make_session_factory
from meterplane.metering.dimensions import PRESET_DIMENSIONS
from meterplane.settings import Settings
from meterplane.tenancy.models import ApiKeyScope
from meterplane.tenancy.service import create_api_key, create_provider

POSTGRES_ADMIN_URL = os.environ.get(
    "METERPLANE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'meterplane.db'}"
        return
    name = f"meterplane_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


def _wipe(engine: Engine) -> None:
    """Empty every table, then put back the preset dimensions the migration seeds."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)} RESTART IDENTITY"))
        else:
            for table in tables:
                conn.execute(table.delete())
        conn.execute(
            insert(Dimension),
            [
                {"key": d.key, "unit": d.unit, "display_name": d.display_name}
                for d in PRESET_DIMENSIONS
            ],
        )


@pytest.fixture
def factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory on a database emptied after the test (preset dimensions stay)."""
    yield make_session_factory(engine)
    _wipe(engine)


class Clock:
    """The app's clock, pinned by the test; move it to cross hours and months."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 10, 20, 12, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(
    settings: Settings, factory: sessionmaker[Session], clock: Clock
) -> Iterator[TestClient]:
    app = create_app(settings, session_factory=factory, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Tenant:
    provider_id: str
    admin_key: str
    ingest_key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    @property
    def ingest(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ingest_key}"}


@pytest.fixture
def make_tenant(factory: sessionmaker[Session], clock: Clock) -> Callable[[str], Tenant]:
    def _make(name: str = "Acme Cloud") -> Tenant:
        with factory() as session, session.begin():
            provider = create_provider(session, name, now=clock())
            admin = create_api_key(session, provider.id, ApiKeyScope.admin, name="t", now=clock())
            ingest = create_api_key(session, provider.id, ApiKeyScope.ingest, name="t", now=clock())
            return Tenant(provider.id, admin.secret, ingest.secret)

    return _make


@pytest.fixture
def tenant(make_tenant: Callable[[str], Tenant]) -> Tenant:
    return make_tenant("Acme Cloud")


@dataclass
class Catalogue:
    service_id: str
    plan_id: str
    customer_id: str
    subscription_id: str


def build_catalogue(client: TestClient, tenant: Tenant, *, suffix: str = "") -> Catalogue:
    """A service, a plan, a customer and its subscription, made through the API."""

    def post(path: str, body: dict[str, object]) -> dict[str, str]:
        response = client.post(path, json=body, headers=tenant.admin)
        assert response.status_code == 201, response.text
        result: dict[str, str] = response.json()
        return result

    service = post("/v1/services", {"name": f"Postgres{suffix}"})
    plan = post(
        "/v1/plans",
        {
            "service_id": service["id"],
            "name": "Standard",
            "currency": "USD",
            "prices": {"cpu_cores": "0.04", "memory_gib": "0.005", "storage_gib": "0.0002"},
        },
    )
    customer = post(
        "/v1/customers",
        {
            "name": f"Globex{suffix}",
            "email": "billing@globex.example",
            "external_billing_id": "GX-1",
        },
    )
    subscription = post("/v1/subscriptions", {"customer_id": customer["id"], "plan_id": plan["id"]})
    return Catalogue(service["id"], plan["id"], customer["id"], subscription["id"])


def register_instance(
    client: TestClient, tenant: Tenant, subscription_id: str, instance_id: str
) -> None:
    response = client.post(
        "/v1/instances",
        json={
            "id": instance_id,
            "subscription_id": subscription_id,
            "cloud": "aws",
            "region": "eu-west-1",
            "external_billing_id": f"ext-{instance_id}",
        },
        headers=tenant.admin,
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def catalogue(client: TestClient, tenant: Tenant) -> Catalogue:
    return build_catalogue(client, tenant)


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# One Chromium per test process: a second sync Playwright in the same thread would find the
# first one's event loop running and refuse to start, so the console and portal tests share it.
from tests.browser import browser, page  # noqa: E402, F401
