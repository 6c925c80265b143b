"""The monthly close, approval with gapless numbers, void, tax and late usage (DESIGN 5–8)."""

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meterplane.invoicing import close as closing
from tests.conftest import Catalogue, Clock, Tenant, build_catalogue, register_instance
from tests.invoicing.helpers import AFTER_OCT, OCT, close, hourly_samples, ingest, invoices


@pytest.fixture
def october(client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock) -> Catalogue:
    """Two instances of one customer with all of October's hours metered."""
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    register_instance(client, tenant, catalogue.subscription_id, "db-2")
    clock.set(AFTER_OCT)
    ingest(
        client,
        tenant,
        hourly_samples("db-1", OCT, 744, cpu=2, memory="4", storage="50")
        + hourly_samples("db-2", OCT, 100, cpu="0.5", memory="1", storage="10"),
    )
    return catalogue


def test_close_drafts_freezes_and_prices_each_line(
    client: TestClient, tenant: Tenant, october: Catalogue
) -> None:
    report = close(client, tenant)
    assert report == {
        "period": "2026-10",
        "created": 1,
        "refreshed": 0,
        "frozen": 1,
        "already_closed": False,
    }
    [invoice] = invoices(client, tenant, period="2026-10")
    assert invoice["status"] == "pending_approval"
    assert invoice["number"] is None
    # cpu: 744 × 2 + 100 × 0.5 = 1538 core-hours at 0.04 → 61.52
    # memory: 744 × 4 + 100 = 3076 GiB-hours at 0.005 → 15.38
    # storage: 744 × 50 + 100 × 10 = 38200 GiB-hours at 0.0002 → 7.64
    assert [
        (line["dimension"], line["quantity"], line["unit_price"], line["amount"])
        for line in invoice["lines"]
    ] == [
        ("cpu_cores", "1538", "0.04", "61.52"),
        ("memory_gib", "3076", "0.005", "15.38"),
        ("storage_gib", "38200", "0.0002", "7.64"),
    ]
    assert (invoice["subtotal"], invoice["tax_amount"], invoice["total"]) == ("84.54", "0", "84.54")
    assert {(i["instance_id"], i["dimension"], i["quantity"]) for i in invoice["instances"]} >= {
        ("db-1", "cpu_cores", "1488"),
        ("db-2", "cpu_cores", "50"),
    }
    assert invoice["instances"][0]["external_billing_id"] == "ext-db-1"
    single = client.get(f"/v1/invoices/{invoice['id']}", headers=tenant.admin).json()
    assert single == invoice


def test_close_is_idempotent_and_refuses_open_or_bad_periods(
    client: TestClient, tenant: Tenant, october: Catalogue, clock: Clock
) -> None:
    close(client, tenant)
    assert close(client, tenant)["already_closed"] is True
    assert len(invoices(client, tenant)) == 1
    for period, status, code in (
        ("2026-11", 409, "period_not_ended"),
        ("2026-13", 422, "invalid_period"),
        ("Oct", 422, "invalid_request"),
    ):
        response = client.post("/v1/billing/close", json={"period": period}, headers=tenant.admin)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_crash_half_way_then_a_rerun_leaves_one_invoice_each(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    clock: Clock,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    customers = [catalogue] + [build_catalogue(client, tenant, suffix=f"-{i}") for i in range(3)]
    for index, cat in enumerate(customers):
        register_instance(client, tenant, cat.subscription_id, f"i-{index}")
    clock.set(AFTER_OCT)
    ingest(client, tenant, [s for i in range(4) for s in hourly_samples(f"i-{i}", OCT, 24)])
    monkeypatch.setattr(closing, "CHUNK_SIZE", 1)

    def crash_after_two(done: int) -> None:
        if done == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        closing.close_period(
            factory, tenant.provider_id, "2026-10", now=AFTER_OCT, after_chunk=crash_after_two
        )
    assert len(invoices(client, tenant)) == 2
    assert {i["status"] for i in invoices(client, tenant)} == {"draft"}
    report = close(client, tenant)
    assert (report["created"], report["refreshed"], report["frozen"]) == (2, 2, 4)
    listed = invoices(client, tenant)
    assert len(listed) == 4
    assert len({i["customer_id"] for i in listed}) == 4
    assert {i["status"] for i in listed} == {"pending_approval"}


def test_approve_numbers_due_date_and_illegal_moves(
    client: TestClient, tenant: Tenant, october: Catalogue, clock: Clock
) -> None:
    close(client, tenant)
    [invoice] = invoices(client, tenant)
    client.patch(
        "/v1/provider/billing-settings",
        json={"invoice_prefix": "ACME", "payment_terms_days": 14},
        headers=tenant.admin,
    )
    approved = client.post(f"/v1/invoices/{invoice['id']}/approve", headers=tenant.admin).json()
    assert approved["status"] == "issued"
    assert approved["number"] == "ACME-2026-000001"
    assert approved["issued_at"] == "2026-11-03T09:00:00Z"
    assert approved["due_at"] == "2026-11-17T09:00:00Z"
    again = client.post(f"/v1/invoices/{invoice['id']}/approve", headers=tenant.admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"
    regenerate = client.post(f"/v1/invoices/{invoice['id']}/regenerate", headers=tenant.admin)
    assert regenerate.json()["error"]["code"] == "illegal_transition"
    voided = client.post(
        f"/v1/invoices/{invoice['id']}/void", json={"reason": "goodwill"}, headers=tenant.admin
    )
    assert voided.json()["status"] == "void"
    assert (
        client.post(f"/v1/invoices/{invoice['id']}/approve", headers=tenant.admin).status_code
        == 409
    )
    trail = client.get(
        "/v1/audit-log", params={"object_id": invoice["id"]}, headers=tenant.admin
    ).json()["data"]
    assert [e["action"] for e in trail] == [
        "invoice.void",
        "invoice.issued",
        "invoice.pending_approval",
        "invoice.draft",
    ]
    assert trail[0]["reason"] == "goodwill"


def test_tax_is_rounded_half_up_once_per_invoice(
    client: TestClient, tenant: Tenant, october: Catalogue
) -> None:
    rate = client.post(
        "/v1/tax-rates",
        json={"name": "VAT", "percentage": "19", "jurisdiction": "DE"},
        headers=tenant.admin,
    )
    assert rate.status_code == 201
    client.patch(
        f"/v1/customers/{october.customer_id}",
        json={"tax_rate_id": rate.json()["id"]},
        headers=tenant.admin,
    )
    close(client, tenant)
    [invoice] = invoices(client, tenant)
    # 84.54 × 19% = 16.0626 → 16.06
    assert (
        invoice["tax_name"],
        invoice["tax_percentage"],
        invoice["tax_amount"],
        invoice["total"],
    ) == ("VAT", "19", "16.06", "100.6")


def test_zero_usage_customers_follow_the_provider_setting(
    client: TestClient, tenant: Tenant, october: Catalogue, clock: Clock
) -> None:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    idle = build_catalogue(client, tenant, suffix="-idle")
    clock.set(AFTER_OCT)
    client.patch(
        "/v1/provider/billing-settings", json={"zero_usage_policy": "issue"}, headers=tenant.admin
    )
    close(client, tenant)
    by_customer = {i["customer_id"]: i for i in invoices(client, tenant)}
    assert by_customer[idle.customer_id]["total"] == "0"
    assert by_customer[idle.customer_id]["lines"] == []


def test_skipping_zero_usage_is_the_default(
    client: TestClient, tenant: Tenant, october: Catalogue, clock: Clock
) -> None:
    build_catalogue(client, tenant, suffix="-idle")
    close(client, tenant)
    assert len(invoices(client, tenant)) == 1


def test_late_usage_for_an_issued_period_is_an_adjustment_next_month(
    client: TestClient, tenant: Tenant, october: Catalogue, clock: Clock
) -> None:
    close(client, tenant)
    [october_invoice] = invoices(client, tenant)
    client.post(f"/v1/invoices/{october_invoice['id']}/approve", headers=tenant.admin)
    # A late node report for 31 October, and November usage.
    late = hourly_samples("db-2", datetime(2026, 10, 31, tzinfo=UTC), 10, cpu=3, node="late")
    november = hourly_samples("db-1", datetime(2026, 11, 1, tzinfo=UTC), 48)
    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    ingest(client, tenant, late + november)
    issued = client.get(f"/v1/invoices/{october_invoice['id']}", headers=tenant.admin).json()
    assert issued["total"] == october_invoice["total"]  # issued invoices never change
    close(client, tenant, "2026-11")
    [nov] = invoices(client, tenant, period="2026-11")
    adjustments = [line for line in nov["lines"] if line["kind"] == "adjustment"]
    assert [
        (line["usage_period"], line["dimension"], line["quantity"], line["amount"])
        for line in adjustments
    ] == [
        ("2026-10", "cpu_cores", "30", "1.2"),
        ("2026-10", "memory_gib", "40", "0.2"),
        ("2026-10", "storage_gib", "500", "0.1"),
    ]
    usage = [line for line in nov["lines"] if line["kind"] == "usage"]
    assert [line["quantity"] for line in usage] == ["96", "192", "2400"]
    assert Decimal(nov["subtotal"]) == sum(Decimal(line["amount"]) for line in nov["lines"])
    # Closing December does not bill October's late usage a second time.
    clock.set(datetime(2027, 1, 3, tzinfo=UTC))
    close(client, tenant, "2026-12")
    assert invoices(client, tenant, period="2026-12") == []


def test_pricing_cannot_reach_into_a_closed_period(
    client: TestClient, tenant: Tenant, october: Catalogue
) -> None:
    close(client, tenant)
    response = client.post(
        f"/v1/plans/{october.plan_id}/prices",
        json={"prices": {"cpu_cores": "1"}, "effective_from": "2026-10-15T00:00:00Z"},
        headers=tenant.admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "period_closed"
    ok = client.post(
        f"/v1/plans/{october.plan_id}/prices",
        json={"prices": {"cpu_cores": "1"}, "effective_from": "2026-11-01T00:00:00Z"},
        headers=tenant.admin,
    )
    assert ok.status_code == 201


def test_invoices_are_invisible_to_other_providers(
    client: TestClient, tenant: Tenant, october: Catalogue, make_tenant: Any
) -> None:
    close(client, tenant)
    [invoice] = invoices(client, tenant)
    other = make_tenant("Other")
    for method, path in (
        ("get", f"/v1/invoices/{invoice['id']}"),
        ("post", f"/v1/invoices/{invoice['id']}/approve"),
        ("post", f"/v1/invoices/{invoice['id']}/void"),
        ("post", f"/v1/invoices/{invoice['id']}/regenerate"),
    ):
        response = client.request(method.upper(), path, headers=other.admin)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "invoice_not_found"
    assert invoices(client, other) == []
    bulk = client.post(
        "/v1/invoices/approve", json={"invoice_ids": [invoice["id"]]}, headers=other.admin
    ).json()["data"]
    assert bulk[0]["error"]["code"] == "invoice_not_found"


def test_fifty_concurrent_approvals_take_fifty_consecutive_numbers(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("row-lock concurrency is a PostgreSQL property; SQLite has one writer")
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    customers = [build_catalogue(client, tenant, suffix=f"-{i}") for i in range(50)]
    for index, cat in enumerate(customers):
        register_instance(client, tenant, cat.subscription_id, f"n-{index}")
    clock.set(AFTER_OCT)
    ingest(client, tenant, [s for i in range(50) for s in hourly_samples(f"n-{i}", OCT, 3)])
    close(client, tenant)
    ids = [i["id"] for i in invoices(client, tenant)]
    assert len(ids) == 50
    barrier = threading.Barrier(50)
    numbers: list[str] = []

    def approve(invoice_id: str) -> None:
        barrier.wait()
        response = client.post(f"/v1/invoices/{invoice_id}/approve", headers=tenant.admin)
        assert response.status_code == 200, response.text
        numbers.append(response.json()["number"])

    threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [f"INV-2026-{n:06d}" for n in range(1, 51)]


def test_late_usage_of_a_custom_dimension_is_adjusted_too(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock
) -> None:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    client.post("/v1/dimensions", json={"key": "gpu_count", "unit": "GPU"}, headers=tenant.admin)
    plan = client.post(
        "/v1/plans",
        json={
            "service_id": catalogue.service_id,
            "name": "GPU",
            "currency": "USD",
            "prices": {"gpu_count": "1.5"},
        },
        headers=tenant.admin,
    ).json()
    subscription = client.post(
        "/v1/subscriptions",
        json={"customer_id": catalogue.customer_id, "plan_id": plan["id"]},
        headers=tenant.admin,
    ).json()
    register_instance(client, tenant, subscription["id"], "gpu-1")
    clock.set(AFTER_OCT)
    rows = hourly_samples("gpu-1", OCT, 2)
    ingest(client, tenant, [{**row, "gpu_count": 2} for row in rows])
    close(client, tenant)
    [october] = invoices(client, tenant, period="2026-10")
    client.post(f"/v1/invoices/{october['id']}/approve", headers=tenant.admin)
    # A late sample of the same node for October's first hour: only gpu_count grows.
    late = hourly_samples("gpu-1", OCT, 1)
    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    ingest(client, tenant, [{**row, "gpu_count": 3} for row in late])
    close(client, tenant, "2026-11")
    [november] = invoices(client, tenant, period="2026-11")
    assert [
        (line["kind"], line["usage_period"], line["dimension"], line["quantity"], line["amount"])
        for line in november["lines"]
    ] == [("adjustment", "2026-10", "gpu_count", "1", "1.5")]
