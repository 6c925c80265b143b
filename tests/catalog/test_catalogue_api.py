"""The catalogue shapes metering relies on, and their bad-input answers."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Tenant, register_instance


def test_objects_are_returned_with_ids_and_exact_prices(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    plan = client.get(f"/v1/plans/{catalogue.plan_id}", headers=tenant.admin).json()
    assert plan["currency"] == "USD"
    assert plan["prices"] == {"cpu_cores": "0.04", "memory_gib": "0.005", "storage_gib": "0.0002"}
    customer = client.get(f"/v1/customers/{catalogue.customer_id}", headers=tenant.admin).json()
    assert customer["external_billing_id"] == "GX-1"
    register_instance(client, tenant, catalogue.subscription_id, "i-1")
    instance = client.get("/v1/instances/i-1", headers=tenant.admin).json()
    assert instance["customer_id"] == catalogue.customer_id
    assert instance["status"] == "running"
    terminated = client.post("/v1/instances/i-1/terminate", headers=tenant.admin).json()
    again = client.post("/v1/instances/i-1/terminate", headers=tenant.admin).json()
    assert terminated["status"] == "terminated"
    assert again["terminated_at"] == terminated["terminated_at"]


def test_a_twelve_place_price_is_kept_exactly(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    response = client.post(
        "/v1/plans",
        json={
            "service_id": catalogue.service_id,
            "name": "Tiny",
            "currency": "jpy",
            "prices": {"cpu_cores": "0.000000000001", "replicas": "3"},
        },
        headers=tenant.admin,
    )
    assert response.status_code == 201
    assert response.json()["prices"] == {"cpu_cores": "0.000000000001", "replicas": "3"}
    assert response.json()["currency"] == "JPY"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"currency": "ZZZ"}, 422, "unknown_currency"),
        ({"prices": {"cpu_cores": "-0.01"}}, 422, "negative_price"),
        ({"prices": {"cpu_cores": "0.0000000000001"}}, 422, "too_many_decimals"),
        ({"prices": {"cpu_cores": "cheap"}}, 422, "invalid_price"),
        ({"prices": {"cpu_cores": 0.5}}, 422, "invalid_price"),
        ({"max_instances_per_customer": -1}, 422, "invalid_request"),
        ({"prices": {"gpu_hours": "1"}}, 422, "unknown_dimension"),
        ({"name": ""}, 422, "invalid_request"),
        ({"service_id": "svc_missing"}, 404, "service_not_found"),
        ({"name": "Standard"}, 409, "plan_exists"),
    ],
)
def test_bad_plans_are_refused_with_a_code(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    change: dict[str, object],
    status: int,
    code: str,
) -> None:
    body = {
        "service_id": catalogue.service_id,
        "name": "Other",
        "currency": "USD",
        "prices": {"cpu_cores": "0.01"},
        **change,
    }
    response = client.post("/v1/plans", json=body, headers=tenant.admin)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/services", {"name": "Postgres"}, 409, "service_exists"),
        ("/v1/services", {}, 422, "invalid_request"),
        ("/v1/customers", {"name": "x", "email": "not-an-email"}, 422, "invalid_request"),
        (
            "/v1/subscriptions",
            {"customer_id": "cus_x", "plan_id": "plan_x"},
            404,
            "customer_not_found",
        ),
        (
            "/v1/instances",
            {"id": "has space", "subscription_id": "s", "cloud": "aws", "region": "r"},
            422,
            "invalid_request",
        ),
        ("/v1/instances/none/terminate", None, 404, "instance_not_found"),
    ],
)
def test_bad_requests_get_specific_errors(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    path: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    response = client.post(path, json=body, headers=tenant.admin)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_instance_ids_are_unique_per_provider(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    register_instance(client, tenant, catalogue.subscription_id, "dup")
    response = client.post(
        "/v1/instances",
        json={
            "id": "dup",
            "subscription_id": catalogue.subscription_id,
            "cloud": "aws",
            "region": "r",
        },
        headers=tenant.admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "instance_exists"


def test_openapi_lists_the_v1_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/services",
        "/v1/plans",
        "/v1/customers",
        "/v1/subscriptions",
        "/v1/instances",
        "/v1/instances/{instance_id}/terminate",
        "/v1/usage/samples",
        "/v1/usage",
        "/v1/usage/rejections",
    ):
        assert path in paths
