"""Ingest through the API: DESIGN rules 1–4 and 9, row by row."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.metering.helpers import hourly, post_samples, sample


@pytest.fixture
def instance(client: TestClient, tenant: Tenant, catalogue: Catalogue) -> str:
    register_instance(client, tenant, catalogue.subscription_id, "pg-main")
    return "pg-main"


def test_rollup_rules_floor_max_sum_and_hourly_max(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    samples = [
        # 10:00 interval: node-1 reported twice (max wins), node-2 once.
        sample(instance, "2026-10-20T10:00:00Z", node="node-1", cpu=2, memory="4", storage="10"),
        sample(
            instance, "2026-10-20T10:04:59.999Z", node="node-1", cpu=3, memory="3.5", storage="10"
        ),
        sample(instance, "2026-10-20T10:02:00+02:00", node="x", cpu=99),  # 08:02 UTC: other hour
        sample(
            instance,
            "2026-10-20T12:01:00+02:00",
            node="node-2",
            cpu="1.25",
            memory="2",
            storage="5",
        ),
        # 10:05 interval: only node-1, smaller.
        sample(instance, "2026-10-20T10:05:00Z", node="node-1", cpu=1, memory="1", storage="1"),
        # 10:55 interval: node-1 bigger on cpu only.
        sample(instance, "2026-10-20T10:59:59Z", node="node-1", cpu=5, memory="1", storage="1"),
    ]
    result = post_samples(client, tenant, samples)
    assert result["accepted"] == 6 and result["rejected"] == []
    data = hourly(
        client,
        tenant,
        start="2026-10-20T08:00:00Z",
        end="2026-10-20T12:00:00Z",
        instance_id=instance,
    )
    by_hour = {row["start"]: row["quantities"] for row in data}
    assert by_hour["2026-10-20T10:00:00Z"] == {
        "cpu_cores": "5",  # max(3 + 1.25 at 10:00, 1 at 10:05, 5 at 10:55)
        "memory_gib": "6",  # 4 + 2
        "storage_gib": "15",
        "replicas": "2",
    }
    assert by_hour["2026-10-20T08:00:00Z"]["cpu_cores"] == "99"
    assert by_hour["2026-10-20T09:00:00Z"]["cpu_cores"] == "0"


def test_resending_and_reordering_never_change_the_result(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    batch = [
        sample(instance, f"2026-10-20T09:{m:02d}:00Z", node=f"n{m % 3}", cpu=m % 7, memory=m)
        for m in range(0, 60, 4)
    ]
    post_samples(client, tenant, batch)
    first = hourly(
        client,
        tenant,
        start="2026-10-20T09:00:00Z",
        end="2026-10-20T10:00:00Z",
        instance_id=instance,
    )
    post_samples(client, tenant, list(reversed(batch)))
    for row in batch:
        post_samples(client, tenant, [row])
    again = hourly(
        client,
        tenant,
        start="2026-10-20T09:00:00Z",
        end="2026-10-20T10:00:00Z",
        instance_id=instance,
    )
    assert again == first


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"timestamp": "2026-10-20T10:00:00"}, "naive_timestamp"),
        ({"timestamp": "yesterday"}, "invalid_timestamp"),
        ({"timestamp": 1760950800}, "invalid_timestamp"),
        ({"cpu_cores": -1}, "negative_value"),
        ({"memory_gib": "lots"}, "invalid_number"),
        ({"memory_gib": True}, "invalid_number"),
        ({"storage_gib": "NaN"}, "invalid_number"),
        ({"cpu_cores": "0.0000000001"}, "too_many_decimals"),
        ({"cpu_cores": "1000001"}, "value_too_large"),
        ({"instance_id": None}, "invalid_identifier"),
        ({"node_id": ""}, "invalid_identifier"),
        ({"cpu": 1}, "unknown_field"),
        ({"instance_id": "no-such-instance"}, "unknown_instance"),
        ({"timestamp": "2026-10-20T12:10:01Z"}, "timestamp_in_future"),
        ({"timestamp": "2026-07-21T11:59:59Z"}, "timestamp_too_old"),
    ],
)
def test_each_bad_row_is_rejected_with_its_code_and_the_rest_kept(
    client: TestClient, tenant: Tenant, instance: str, change: dict[str, Any], code: str
) -> None:
    bad = {**sample(instance, "2026-10-20T11:00:00Z", node="bad"), **change}
    good = sample(instance, "2026-10-20T11:00:00Z", cpu=3)
    result = post_samples(client, tenant, [good, bad, good])
    assert result["accepted"] == 2
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, code)]
    assert result["rejected"][0]["message"]
    stored = client.get("/v1/usage/rejections", headers=tenant.admin).json()["data"]
    assert [(r["index"], r["code"], r["batch_id"]) for r in stored] == [
        (1, code, result["batch_id"])
    ]
    assert stored[0]["payload"]["node_id"] == bad.get("node_id")
    usage = hourly(
        client,
        tenant,
        start="2026-10-20T11:00:00Z",
        end="2026-10-20T12:00:00Z",
        instance_id=instance,
    )
    assert usage[0]["quantities"]["cpu_cores"] == "3"


def test_missing_field_and_non_object_rows(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    row = sample(instance, "2026-10-20T11:00:00Z")
    del row["storage_gib"]
    result = post_samples(client, tenant, [row, "not an object", 7])
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [
        (0, "missing_field"),
        (1, "invalid_row"),
        (2, "invalid_row"),
    ]
    assert "storage_gib" in result["rejected"][0]["message"]


def test_terminated_instance_keeps_earlier_usage_and_refuses_later_samples(
    client: TestClient, tenant: Tenant, instance: str, clock: Clock
) -> None:
    response = client.post(f"/v1/instances/{instance}/terminate", headers=tenant.admin)
    assert response.json()["status"] == "terminated"
    result = post_samples(
        client,
        tenant,
        [sample(instance, "2026-10-20T11:55:00Z"), sample(instance, "2026-10-20T12:00:00Z")],
    )
    assert result["accepted"] == 1
    assert result["rejected"][0]["code"] == "instance_terminated"


def test_exact_decimals_survive_json_numbers(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    body = (
        '{"samples": [{"instance_id": "pg-main", "node_id": "a", '
        '"timestamp": "2026-10-20T11:00:00Z", "cpu_cores": 0.1, "memory_gib": 123456.123456789, '
        '"storage_gib": 1e2}, {"instance_id": "pg-main", "node_id": "b", '
        '"timestamp": "2026-10-20T11:00:00Z", "cpu_cores": 0.2, "memory_gib": "0.000000001", '
        '"storage_gib": 0}]}'
    )
    response = client.post(
        "/v1/usage/samples",
        content=body,
        headers={**tenant.ingest, "Content-Type": "application/json"},
    )
    assert response.json()["accepted"] == 2
    row = hourly(
        client,
        tenant,
        start="2026-10-20T11:00:00Z",
        end="2026-10-20T12:00:00Z",
        instance_id=instance,
    )[0]["quantities"]
    assert row == {
        "cpu_cores": "0.3",
        "memory_gib": "123456.12345679",
        "storage_gib": "100",
        "replicas": "2",
    }


def test_ndjson_batches_reject_bad_lines_individually(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    lines = [
        json.dumps(sample(instance, "2026-10-20T11:00:00Z", cpu=1)),
        "{not json",
        "",
        json.dumps(sample(instance, "2026-10-20T11:00:00Z", node="n2", cpu=2)),
    ]
    response = client.post(
        "/v1/usage/samples",
        content="\n".join(lines).encode(),
        headers={**tenant.ingest, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, "malformed_json")]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{bad json", "application/json", 422, "malformed_json"),
        (b"[1, 2]", "application/json", 422, "invalid_body"),
        (b'{"samples": {}}', "application/json", 422, "invalid_body"),
        (b"\xff\xfe", "application/json", 422, "malformed_json"),
        (b"a,b", "text/csv", 422, "unsupported_media_type"),
    ],
)
def test_malformed_requests_are_4xx_with_a_code(
    client: TestClient, tenant: Tenant, body: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post(
        "/v1/usage/samples", content=body, headers={**tenant.ingest, "Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_batches_over_the_limit_are_refused_whole(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    rows = [sample(instance, "2026-10-20T11:00:00Z")] * 10_001
    response = client.post("/v1/usage/samples", json={"samples": rows}, headers=tenant.ingest)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "batch_too_large"
    assert client.get("/v1/usage/rejections", headers=tenant.admin).json()["data"] == []
