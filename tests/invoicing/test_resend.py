"""An issued invoice can be emailed again; each resend is one more outbox message."""

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.invoicing.helpers import AFTER_OCT, OCT, close, hourly_samples, ingest, invoices


def _emails(client: TestClient, tenant: Tenant, event: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/v1/outbox", headers=tenant.admin).json()["data"]
    return [row for row in rows if row["event"] == event and row["channel"] == "email"]


def test_resend_queues_the_invoice_email_again(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock, make_tenant: Any
) -> None:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    clock.set(AFTER_OCT)
    ingest(client, tenant, hourly_samples("db-1", OCT, 24))
    close(client, tenant)
    [invoice] = invoices(client, tenant)
    early = client.post(f"/v1/invoices/{invoice['id']}/resend", headers=tenant.admin)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "invoice_not_issued")

    client.post(f"/v1/invoices/{invoice['id']}/approve", headers=tenant.admin)
    assert len(_emails(client, tenant, "invoice.issued")) == 1
    for _ in range(2):
        response = client.post(f"/v1/invoices/{invoice['id']}/resend", headers=tenant.admin)
        assert response.status_code == 200, response.text
    resent = _emails(client, tenant, "invoice.resent")
    assert len(resent) == 2
    assert {row["recipient"] for row in resent} == {"billing@globex.example"}
    other = make_tenant("Other")
    hidden = client.post(f"/v1/invoices/{invoice['id']}/resend", headers=other.admin)
    assert hidden.status_code == 404
