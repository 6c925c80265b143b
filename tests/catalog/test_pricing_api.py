"""Price versions, overrides, plan changes and dimensions through the API, with their errors."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Clock, Tenant, register_instance


def _post(client: TestClient, tenant: Tenant, path: str, body: dict[str, Any] | None) -> Any:
    return client.post(path, json=body, headers=tenant.admin)


def test_price_versions_show_in_the_plan_and_the_audit_log(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock
) -> None:
    response = _post(
        client,
        tenant,
        f"/v1/plans/{catalogue.plan_id}/prices",
        {"prices": {"cpu_cores": "0.05"}, "effective_from": "2026-10-21T00:00:00Z"},
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["prices"]["cpu_cores"] == "0.04"  # not yet in force at the pinned clock
    assert {
        "dimension": "cpu_cores",
        "unit_price": "0.05",
        "effective_from": "2026-10-21T00:00:00Z",
        "applies_to": "all",
    } in plan["price_versions"]
    entries = client.get(
        "/v1/audit-log", params={"object_id": catalogue.plan_id}, headers=tenant.admin
    ).json()["data"]
    assert [e["action"] for e in entries] == ["plan.price_version_added", "plan.created"]
    latest = entries[0]
    assert latest["actor"].startswith("api_key:")
    assert latest["before"]["prices"]["cpu_cores"] == "0.04"
    assert latest["after"]["version"]["prices"] == {"cpu_cores": "0.05"}
    assert latest["at"] == "2026-10-20T12:00:00Z"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"prices": {"cpu_cores": "0.05"}, "effective_from": "2026-10-21T00:30:00Z"},
            422,
            "not_on_hour",
        ),
        (
            {"prices": {"cpu_cores": "-1"}, "effective_from": "2026-10-21T00:00:00Z"},
            422,
            "negative_price",
        ),
        (
            {"prices": {"gpu": "1"}, "effective_from": "2026-10-21T00:00:00Z"},
            422,
            "unknown_dimension",
        ),
        ({"prices": {}, "effective_from": "2026-10-21T00:00:00Z"}, 422, "no_prices"),
        (
            {"prices": {"cpu_cores": "1"}, "effective_from": "1970-01-01T00:00:00Z"},
            409,
            "price_version_exists",
        ),
        (
            {"prices": {"cpu_cores": "1"}, "effective_from": "2026-10-21T00:00:00"},
            422,
            "invalid_request",
        ),
        (
            {
                "prices": {"cpu_cores": "1"},
                "effective_from": "2026-10-21T00:00:00Z",
                "applies_to": "some",
            },
            422,
            "invalid_request",
        ),
    ],
)
def test_bad_price_versions(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = _post(client, tenant, f"/v1/plans/{catalogue.plan_id}/prices", body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_subscription_overrides_refuse_overlaps(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    path = f"/v1/subscriptions/{catalogue.subscription_id}/prices"
    first = _post(
        client,
        tenant,
        path,
        {
            "prices": {"cpu_cores": "0.03"},
            "effective_from": "2026-10-01T00:00:00Z",
            "effective_to": "2026-11-01T00:00:00Z",
        },
    )
    assert first.status_code == 201
    assert first.json()["data"] == [
        {
            "dimension": "cpu_cores",
            "unit_price": "0.03",
            "effective_from": "2026-10-01T00:00:00Z",
            "effective_to": "2026-11-01T00:00:00Z",
        }
    ]
    overlap = _post(
        client,
        tenant,
        path,
        {"prices": {"cpu_cores": "0.02"}, "effective_from": "2026-10-31T00:00:00Z"},
    )
    assert overlap.status_code == 409
    assert overlap.json()["error"]["code"] == "override_overlaps"
    after = _post(
        client,
        tenant,
        path,
        {"prices": {"cpu_cores": "0.02"}, "effective_from": "2026-11-01T00:00:00Z"},
    )
    assert after.status_code == 201
    backwards = _post(
        client,
        tenant,
        path,
        {
            "prices": {"memory_gib": "0.001"},
            "effective_from": "2026-11-01T00:00:00Z",
            "effective_to": "2026-10-01T00:00:00Z",
        },
    )
    assert backwards.json()["error"]["code"] == "invalid_range"


def test_plan_changes_stay_within_service_and_currency(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    register_instance(client, tenant, catalogue.subscription_id, "mover")
    pro = _post(
        client,
        tenant,
        "/v1/plans",
        {
            "service_id": catalogue.service_id,
            "name": "Pro",
            "currency": "USD",
            "prices": {"cpu_cores": "1"},
        },
    )
    eur = _post(
        client,
        tenant,
        "/v1/plans",
        {"service_id": catalogue.service_id, "name": "EU", "currency": "EUR", "prices": {}},
    )
    other_service = _post(client, tenant, "/v1/services", {"name": "Kafka"}).json()
    kafka = _post(
        client,
        tenant,
        "/v1/plans",
        {"service_id": other_service["id"], "name": "K", "currency": "USD", "prices": {}},
    )
    path = "/v1/instances/mover/change-plan"
    cases = [
        ({"plan_id": kafka.json()["id"]}, 409, "plan_in_other_service"),
        ({"plan_id": eur.json()["id"]}, 409, "currency_mismatch"),
        ({"plan_id": catalogue.plan_id}, 409, "plan_unchanged"),
        ({"plan_id": "plan_nope"}, 404, "plan_not_found"),
        (
            {"plan_id": pro.json()["id"], "effective_from": "2026-10-20T12:15:00Z"},
            422,
            "not_on_hour",
        ),
    ]
    for body, status, code in cases:
        response = _post(client, tenant, path, body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    moved = _post(client, tenant, path, {"plan_id": pro.json()["id"]})
    assert moved.status_code == 200
    assert moved.json()["plan_id"] == pro.json()["id"]
    assert moved.json()["plan_history"][-1] == {
        "plan_id": pro.json()["id"],
        "effective_from": "2026-10-20T13:00:00Z",
    }
    back = _post(
        client,
        tenant,
        path,
        {"plan_id": catalogue.plan_id, "effective_from": "2026-10-20T10:00:00Z"},
    )
    assert back.json()["error"]["code"] == "plan_change_out_of_order"
    client.post("/v1/instances/mover/terminate", headers=tenant.admin)
    gone = _post(client, tenant, path, {"plan_id": catalogue.plan_id})
    assert gone.json()["error"]["code"] == "instance_terminated"


def test_a_customer_bills_in_one_currency(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    eur = _post(
        client,
        tenant,
        "/v1/plans",
        {"service_id": catalogue.service_id, "name": "EU", "currency": "EUR", "prices": {}},
    ).json()
    response = _post(
        client,
        tenant,
        "/v1/subscriptions",
        {"customer_id": catalogue.customer_id, "plan_id": eur["id"]},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "currency_mismatch"


def test_custom_dimensions_can_be_added_and_priced(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, make_tenant: Any
) -> None:
    created = _post(client, tenant, "/v1/dimensions", {"key": "gpu_count", "unit": "GPU"})
    assert created.status_code == 201
    assert created.json() == {
        "key": "gpu_count",
        "unit": "GPU",
        "display_name": "gpu_count",
        "preset": False,
    }
    again = _post(client, tenant, "/v1/dimensions", {"key": "gpu_count", "unit": "GPU"})
    assert again.json()["error"]["code"] == "dimension_exists"
    reserved = _post(client, tenant, "/v1/dimensions", {"key": "timestamp", "unit": "x"})
    assert reserved.json()["error"]["code"] == "reserved_dimension_key"
    preset = _post(client, tenant, "/v1/dimensions", {"key": "cpu_cores", "unit": "x"})
    assert preset.json()["error"]["code"] == "dimension_exists"
    keys = [d["key"] for d in client.get("/v1/dimensions", headers=tenant.admin).json()["data"]]
    assert keys == ["cpu_cores", "memory_gib", "storage_gib", "replicas", "gpu_count"]
    plan = _post(
        client,
        tenant,
        "/v1/plans",
        {
            "service_id": catalogue.service_id,
            "name": "GPU",
            "currency": "USD",
            "prices": {"gpu_count": "1.5"},
        },
    )
    assert plan.status_code == 201
    # Another provider does not see it and cannot price it.
    other = make_tenant("Other")
    other_keys = [
        d["key"] for d in client.get("/v1/dimensions", headers=other.admin).json()["data"]
    ]
    assert "gpu_count" not in other_keys


def test_new_routes_hide_other_providers_objects(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, make_tenant: Any
) -> None:
    register_instance(client, tenant, catalogue.subscription_id, "owned")
    other = make_tenant("Intruder")
    attempts = [
        (
            "post",
            f"/v1/plans/{catalogue.plan_id}/prices",
            {"prices": {"cpu_cores": "1"}, "effective_from": "2026-11-01T00:00:00Z"},
        ),
        ("patch", f"/v1/plans/{catalogue.plan_id}", {"max_instances_per_customer": 1}),
        ("patch", f"/v1/services/{catalogue.service_id}", {"integrations": []}),
        ("patch", f"/v1/customers/{catalogue.customer_id}", {"default_payment_method": "pm"}),
        (
            "post",
            f"/v1/subscriptions/{catalogue.subscription_id}/prices",
            {"prices": {"cpu_cores": "1"}, "effective_from": "2026-11-01T00:00:00Z"},
        ),
        ("get", f"/v1/subscriptions/{catalogue.subscription_id}/prices", None),
        ("post", f"/v1/subscriptions/{catalogue.subscription_id}/cancel", None),
        ("post", "/v1/instances/owned/change-plan", {"plan_id": catalogue.plan_id}),
        ("get", f"/v1/customers/{catalogue.customer_id}/upcoming-invoice", None),
    ]
    for method, path, body in attempts:
        kwargs: dict[str, Any] = {"headers": other.admin}
        if body is not None:
            kwargs["json"] = body
        response = client.request(method.upper(), path, **kwargs)
        assert response.status_code == 404, (path, response.text)
    assert client.get("/v1/audit-log", headers=other.admin).json()["data"] == []
