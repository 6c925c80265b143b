"""The schedule: drafts during the grace period, the close after it, auto-approval, past due."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meterplane.worker import run_once
from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.invoicing.helpers import OCT, hourly_samples, ingest, invoices


@pytest.fixture
def metered(client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock) -> Catalogue:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    clock.set(datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    ingest(client, tenant, hourly_samples("db-1", OCT, 743))
    return catalogue


def test_drafts_during_grace_then_close_then_auto_approve_then_past_due(
    client: TestClient, tenant: Tenant, metered: Catalogue, clock: Clock, factory: Any
) -> None:
    client.patch(
        "/v1/provider/billing-settings",
        json={"close_grace_hours": 24, "auto_approve_after_days": 2, "payment_terms_days": 10},
        headers=tenant.admin,
    )
    during_grace = datetime(2026, 11, 1, 6, tzinfo=UTC)
    clock.set(during_grace)
    report = run_once(factory, now=during_grace)
    assert report.drafted == [f"{tenant.provider_id}:2026-10"]
    [draft] = invoices(client, tenant)
    assert draft["status"] == "draft"
    assert draft["lines"][0]["quantity"] == "1486"  # 743 hours × 2 cores

    # A late sample for the last hour of October arrives during the grace period:
    # the draft is recomputed, no adjustment is needed.
    ingest(client, tenant, hourly_samples("db-1", datetime(2026, 10, 31, 23, tzinfo=UTC), 1))
    run_once(factory, now=during_grace + timedelta(hours=1))
    [draft] = invoices(client, tenant)
    assert draft["lines"][0]["quantity"] == "1488"

    after_grace = datetime(2026, 11, 2, 0, 5, tzinfo=UTC)
    report = run_once(factory, now=after_grace)
    assert report.closed == [f"{tenant.provider_id}:2026-10"]
    assert invoices(client, tenant)[0]["status"] == "pending_approval"
    assert run_once(factory, now=after_grace + timedelta(hours=1)).closed == []

    report = run_once(factory, now=after_grace + timedelta(days=2))
    [approved] = invoices(client, tenant)
    assert report.approved == [approved["id"]]
    assert approved["status"] == "issued" and approved["number"] == "INV-2026-000001"
    trail = client.get(
        "/v1/audit-log", params={"object_id": approved["id"]}, headers=tenant.admin
    ).json()["data"]
    assert trail[0]["actor"] == "system:auto_approve"

    due = datetime.fromisoformat(approved["due_at"])
    assert run_once(factory, now=due - timedelta(minutes=1)).past_due == []
    assert run_once(factory, now=due + timedelta(minutes=1)).past_due == [approved["id"]]
    assert invoices(client, tenant)[0]["status"] == "past_due"
    assert run_once(factory, now=due + timedelta(days=1)).past_due == []


def test_manual_approval_is_the_default(
    client: TestClient, tenant: Tenant, metered: Catalogue, clock: Clock, factory: Any
) -> None:
    run_once(factory, now=datetime(2026, 11, 5, tzinfo=UTC))
    report = run_once(factory, now=datetime(2026, 12, 25, tzinfo=UTC))
    assert report.approved == []
    assert invoices(client, tenant, period="2026-10")[0]["status"] == "pending_approval"
