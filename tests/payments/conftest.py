"""Payments against localstripe behind the small Stripe front (see stripe_front.py).

Webhooks: the tests deliver events themselves, from each account's localstripe event list,
signed with the endpoint secret, to the TestClient — so a test decides which events arrive,
twice, late, out of order or never.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.payments import worker
from meterplane.payments.gateway import StripeGateway
from meterplane.payments.worker import PaymentsReport
from meterplane.settings import Settings
from tests.conftest import Catalogue, Clock, Tenant, build_catalogue, register_instance
from tests.invoicing.helpers import OCT, hourly_samples, ingest
from tests.payments.stripe_front import StripeFront, event_body, sign

PLATFORM_KEY = "sk_test_platform_meterplane"
CLIENT_ID = "ca_test_meterplane"
WEBHOOK_SECRET = "whsec_test_meterplane"
VISA = "4242424242424242"
DECLINED = "4000000000000341"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # localstripe registers plain functions as aiohttp handlers.
    for item in items:
        if "payments" in item.path.parts:
            item.add_marker(pytest.mark.filterwarnings("ignore:Bare functions are deprecated"))


@pytest.fixture(scope="session")
def front() -> Iterator[StripeFront]:
    stripe_front = StripeFront(platform_key=PLATFORM_KEY, client_id=CLIENT_ID)
    stripe_front.start()
    yield stripe_front
    stripe_front.stop()


@pytest.fixture
def settings(database_url: str, front: StripeFront) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-for-oauth-state",
        stripe_secret_key=PLATFORM_KEY,
        stripe_publishable_key="pk_test_platform",
        stripe_client_id=CLIENT_ID,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=front.url,
        stripe_connect_base=front.url,
        stripe_js_url=f"{front.url}/js.stripe.com/v3/",
        stripe_send_off_session=False,  # localstripe rejects the parameter
    )


@pytest.fixture
def gateway(settings: Settings) -> StripeGateway:
    return StripeGateway(settings)


def connect_account(client: TestClient, tenant: Tenant, front: StripeFront) -> str:
    """The whole OAuth round trip; returns the connected account id."""
    response = client.post("/v1/provider/stripe/connect", headers=tenant.admin)
    assert response.status_code == 200, response.text
    url = httpx.URL(response.json()["url"])
    assert url.params["client_id"] == CLIENT_ID and url.params["scope"] == "read_write"
    code = front.approve()
    callback = client.get(
        "/v1/stripe/connect/callback", params={"code": code, "state": url.params["state"]}
    )
    assert callback.status_code == 200, callback.text
    account: str = callback.json()["stripe_account_id"]
    return account


def save_card(
    client: TestClient,
    tenant: Tenant,
    front: StripeFront,
    account: str,
    customer_id: str,
    number: str = VISA,
) -> str:
    """The portal's card form: a SetupIntent confirmed by "Stripe.js", then made the default."""
    response = client.post(f"/v1/customers/{customer_id}/setup-intents", headers=tenant.admin)
    assert response.status_code == 201, response.text
    setup = response.json()
    assert setup["stripe_account"] == account and setup["client_secret"]
    with front.api(account) as api:
        method = api.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        )
        assert method.status_code == 200, method.text
        pm: str = method.json()["id"]
        confirmed = api.post(
            f"/v1/setup_intents/{setup['setup_intent']}/confirm",
            data={"payment_method": pm, "client_secret": setup["client_secret"]},
        )
        assert confirmed.json()["status"] == "succeeded", confirmed.text
    response = client.post(
        f"/v1/customers/{customer_id}/payment-methods/default",
        json={"payment_method": pm},
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text
    return pm


@dataclass
class Billed:
    tenant: Tenant
    catalogue: Catalogue
    account: str
    invoice_id: str
    total: str


def issue_invoice(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    clock: Clock,
    factory: sessionmaker[Session],
    instance: str = "db-1",
) -> tuple[str, str]:
    """October metered, closed and approved: approval records the first payment attempt."""
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, instance)
    clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    ingest(client, tenant, hourly_samples(instance, OCT, 24))
    response = client.post("/v1/billing/close", json={"period": "2026-10"}, headers=tenant.admin)
    assert response.status_code == 200, response.text
    [invoice] = client.get(
        "/v1/invoices", params={"customer_id": catalogue.customer_id}, headers=tenant.admin
    ).json()["data"]
    approved = client.post(f"/v1/invoices/{invoice['id']}/approve", headers=tenant.admin)
    assert approved.status_code == 200, approved.text
    return invoice["id"], approved.json()["total"]


@pytest.fixture
def billed(
    client: TestClient,
    tenant: Tenant,
    front: StripeFront,
    clock: Clock,
    factory: sessionmaker[Session],
) -> Billed:
    """A connected provider whose customer saved a Visa card, with an issued invoice."""
    account = connect_account(client, tenant, front)
    catalogue = build_catalogue(client, tenant)
    save_card(client, tenant, front, account, catalogue.customer_id)
    invoice_id, total = issue_invoice(client, tenant, catalogue, clock, factory)
    return Billed(tenant, catalogue, account, invoice_id, total)


def run(factory: sessionmaker[Session], gateway: Any, clock: Clock) -> PaymentsReport:
    return worker.run_due(factory, now=clock(), gateway=gateway)


def post_event(client: TestClient, event: dict[str, Any]) -> httpx.Response:
    payload = event_body(event)
    return client.post(
        "/v1/stripe/webhooks",
        content=payload,
        headers={
            "Stripe-Signature": sign(payload, WEBHOOK_SECRET),
            "Content-Type": "application/json",
        },
    )


def deliver(client: TestClient, front: StripeFront, account: str, type: str) -> list[str]:
    """Deliver every event of that type the account emitted; returns their ids."""
    ids = []
    for event in front.events(account, type):
        response = post_event(client, event)
        assert response.status_code == 200, response.text
        ids.append(event["id"])
    return ids


def history(client: TestClient, tenant: Tenant, invoice_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/invoices/{invoice_id}/payments", headers=tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def status(client: TestClient, tenant: Tenant, invoice_id: str) -> str:
    result: str = client.get(f"/v1/invoices/{invoice_id}", headers=tenant.admin).json()["status"]
    return result


def later(clock: Clock, **delta: float) -> None:
    clock.set(clock() + timedelta(**delta))
