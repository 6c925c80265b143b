from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Clock, Tenant

OCT = datetime(2026, 10, 1, tzinfo=UTC)
AFTER_OCT = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def hourly_samples(
    instance_id: str,
    start: datetime,
    hours: int,
    *,
    cpu: int | str = 2,
    memory: str = "4",
    storage: str = "50",
    node: str = "n1",
) -> list[dict[str, Any]]:
    """One sample per hour (at :07), so hourly usage equals the values given."""
    return [
        {
            "instance_id": instance_id,
            "node_id": node,
            "timestamp": (start + timedelta(hours=h, minutes=7)).isoformat(),
            "cpu_cores": cpu,
            "memory_gib": memory,
            "storage_gib": storage,
        }
        for h in range(hours)
    ]


def ingest(client: TestClient, tenant: Tenant, samples: list[dict[str, Any]]) -> None:
    for start in range(0, len(samples), 5000):
        response = client.post(
            "/v1/usage/samples",
            json={"samples": samples[start : start + 5000]},
            headers=tenant.ingest,
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.json()["rejected"][:3]


def close(client: TestClient, tenant: Tenant, period: str = "2026-10") -> dict[str, Any]:
    response = client.post("/v1/billing/close", json={"period": period}, headers=tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def invoices(client: TestClient, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = client.get("/v1/invoices", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def at(clock: Clock, moment: datetime) -> None:
    clock.set(moment)
