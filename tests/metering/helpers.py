from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def sample(
    instance_id: str,
    timestamp: str | datetime,
    *,
    node: str = "node-1",
    cpu: Any = 2,
    memory: Any = "8",
    storage: Any = "100",
) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "node_id": node,
        "timestamp": timestamp if isinstance(timestamp, str) else timestamp.isoformat(),
        "cpu_cores": cpu,
        "memory_gib": memory,
        "storage_gib": storage,
    }


def post_samples(client: TestClient, tenant: Tenant, samples: list[Any]) -> dict[str, Any]:
    response = client.post("/v1/usage/samples", json={"samples": samples}, headers=tenant.ingest)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def hourly(
    client: TestClient, tenant: Tenant, *, start: str, end: str, **scope: str
) -> list[dict[str, Any]]:
    response = client.get(
        "/v1/usage",
        params={"from": start, "to": end, "granularity": "hour", **scope},
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data
