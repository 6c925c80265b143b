"""GET /v1/usage: per-customer totals over all instances, bucketed by hour, day and month."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.metering.helpers import post_samples, sample


@pytest.fixture
def two_instances(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock
) -> Catalogue:
    register_instance(client, tenant, catalogue.subscription_id, "a")
    register_instance(client, tenant, catalogue.subscription_id, "b")
    clock.set(datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    start = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)
    rows = []
    for step in range(48):  # four hours of 5-minute samples, across a month end
        moment = start + timedelta(minutes=5 * step)
        rows.append(sample("a", moment, cpu=2, memory="1.5", storage="10"))
        rows.append(sample("b", moment, node="b1", cpu=1, memory="0.25", storage="0"))
        rows.append(sample("b", moment, node="b2", cpu=1, memory="0.25", storage="0"))
    assert post_samples(client, tenant, rows)["accepted"] == 144
    return catalogue


def _get(client: TestClient, tenant: Tenant, **params: str) -> dict[str, object]:
    response = client.get("/v1/usage", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_customer_totals_aggregate_instances_by_month(
    client: TestClient, tenant: Tenant, two_instances: Catalogue
) -> None:
    report = _get(
        client,
        tenant,
        customer_id=two_instances.customer_id,
        granularity="month",
        **{"from": "2026-10-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    )
    data = report["data"]
    assert isinstance(data, list)
    assert [b["start"] for b in data] == ["2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"]
    # Two hours in October and two in November; per hour a: 2 cores, b: 1 + 1 cores.
    assert data[0]["quantities"] == {
        "cpu_cores": "8",
        "memory_gib": "4",
        "storage_gib": "20",
        "replicas": "6",
    }
    assert data[1]["quantities"] == data[0]["quantities"]
    assert report["totals"] == {
        "cpu_cores": "16",
        "memory_gib": "8",
        "storage_gib": "40",
        "replicas": "12",
    }
    assert report["units"] == {
        "cpu_cores": "core-hours",
        "memory_gib": "GiB-hours",
        "storage_gib": "GiB-hours",
        "replicas": "replica-hours",
    }


def test_instance_hours_and_days_and_one_dimension(
    client: TestClient, tenant: Tenant, two_instances: Catalogue
) -> None:
    by_hour = _get(
        client,
        tenant,
        instance_id="b",
        granularity="hour",
        dimension="replicas",
        **{"from": "2026-10-31T23:00:00Z", "to": "2026-11-01T01:00:00Z"},
    )
    assert [(b["start"], b["quantities"]) for b in by_hour["data"]] == [  # type: ignore[union-attr]
        ("2026-10-31T23:00:00Z", {"replicas": "2"}),
        ("2026-11-01T00:00:00Z", {"replicas": "2"}),
    ]
    by_day = _get(
        client,
        tenant,
        instance_id="a",
        granularity="day",
        **{"from": "2026-10-31T00:00:00+00:00", "to": "2026-11-02T00:00:00Z"},
    )
    assert [b["quantities"]["cpu_cores"] for b in by_day["data"]] == ["4", "4"]  # type: ignore[union-attr,index]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        (
            {"from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z", "instance_id": "a"},
            422,
            "invalid_range",
        ),
        ({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 422, "invalid_filter"),
        (
            {"from": "2026-10-01T00:00:00", "to": "2026-11-01T00:00:00Z", "instance_id": "a"},
            422,
            "invalid_request",
        ),
        (
            {
                "from": "2026-10-01T00:00:00Z",
                "to": "2026-11-01T00:00:00Z",
                "instance_id": "a",
                "granularity": "week",
            },
            422,
            "invalid_request",
        ),
        (
            {
                "from": "2026-10-01T00:00:00Z",
                "to": "2026-11-01T00:00:00Z",
                "instance_id": "a",
                "dimension": "gpus",
            },
            422,
            "unknown_dimension",
        ),
        (
            {
                "from": "2020-01-01T00:00:00Z",
                "to": "2026-11-01T00:00:00Z",
                "instance_id": "a",
                "granularity": "hour",
            },
            422,
            "range_too_large",
        ),
        (
            {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z", "instance_id": "zz"},
            404,
            "instance_not_found",
        ),
    ],
)
def test_bad_queries_get_specific_errors(
    client: TestClient,
    tenant: Tenant,
    two_instances: Catalogue,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = client.get("/v1/usage", params=params, headers=tenant.admin)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
