"""Payment outcomes reach the customer through the outbox, in the same transaction."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.payments.gateway import StripeGateway
from tests.conftest import Clock
from tests.payments.conftest import Billed, StripeFront, deliver, later, run


def _outbox(client: TestClient, billed: Billed) -> list[dict[str, Any]]:
    response = client.get("/v1/outbox", headers=billed.tenant.admin)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_paid_and_failed_payments_are_announced_once(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    run(factory, gateway, clock)
    deliver(client, front, billed.account, "payment_intent.succeeded")
    run(factory, gateway, clock)
    later(clock, hours=1)
    run(factory, gateway, clock)
    events = [row["event"] for row in _outbox(client, billed)]
    assert events.count("invoice.issued") >= 1
    paid = [row for row in _outbox(client, billed) if row["event"] == "invoice.paid"]
    assert paid and {row["channel"] for row in paid} >= {"email"}
    assert len([row for row in paid if row["channel"] == "email"]) == 1
