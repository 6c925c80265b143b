"""Admission answers and the atomic check on registration (DESIGN, "Admission")."""

import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Tenant, register_instance


def _patch_plan(client: TestClient, tenant: Tenant, plan_id: str, **changes: Any) -> Any:
    return client.patch(f"/v1/plans/{plan_id}", json=changes, headers=tenant.admin)


def _admit(client: TestClient, tenant: Tenant, customer_id: str, plan_id: str) -> Any:
    response = client.post(
        "/v1/admission", json={"customer_id": customer_id, "plan_id": plan_id}, headers=tenant.admin
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_admission_answers_every_reason(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    cat = catalogue
    assert _admit(client, tenant, cat.customer_id, cat.plan_id) == {"allowed": True}
    assert _admit(client, tenant, cat.customer_id, "plan_nope")["code"] == "unknown_plan"

    assert _patch_plan(client, tenant, cat.plan_id, max_instances_per_customer=1).status_code == 200
    register_instance(client, tenant, cat.subscription_id, "only-one")
    denied = _admit(client, tenant, cat.customer_id, cat.plan_id)
    assert denied["allowed"] is False
    assert (denied["code"], denied["limit"], denied["current"]) == ("quota_exceeded", 1, 1)
    assert "1" in denied["message"]

    # Registration applies the same rule and answers 409 with the same code.
    refused = client.post(
        "/v1/instances",
        json={
            "id": "second",
            "subscription_id": cat.subscription_id,
            "cloud": "aws",
            "region": "r",
        },
        headers=tenant.admin,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert refused.json()["error"]["details"] == {"limit": 1, "current": 1}

    # A terminated instance frees its slot.
    client.post("/v1/instances/only-one/terminate", headers=tenant.admin)
    assert _admit(client, tenant, cat.customer_id, cat.plan_id) == {"allowed": True}

    _patch_plan(client, tenant, cat.plan_id, require_payment_method=True)
    assert _admit(client, tenant, cat.customer_id, cat.plan_id)["code"] == (
        "payment_method_required"
    )
    client.patch(
        f"/v1/customers/{cat.customer_id}",
        json={"default_payment_method": "pm_card"},
        headers=tenant.admin,
    )
    assert _admit(client, tenant, cat.customer_id, cat.plan_id) == {"allowed": True}

    client.post(f"/v1/subscriptions/{cat.subscription_id}/cancel", headers=tenant.admin)
    assert _admit(client, tenant, cat.customer_id, cat.plan_id)["code"] == "subscription_inactive"
    refused = client.post(
        "/v1/instances",
        json={"id": "third", "subscription_id": cat.subscription_id, "cloud": "aws", "region": "r"},
        headers=tenant.admin,
    )
    assert refused.json()["error"]["code"] == "subscription_inactive"


def test_unknown_customer_is_404_and_other_providers_plans_are_unknown(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, make_tenant: Any
) -> None:
    response = client.post(
        "/v1/admission",
        json={"customer_id": "cus_x", "plan_id": catalogue.plan_id},
        headers=tenant.admin,
    )
    assert response.status_code == 404
    other = make_tenant("Other")
    response = client.post(
        "/v1/admission",
        json={"customer_id": catalogue.customer_id, "plan_id": catalogue.plan_id},
        headers=other.admin,
    )
    assert response.status_code == 404


def test_quota_cannot_drop_below_what_customers_run(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    for name in ("a", "b", "c"):
        register_instance(client, tenant, catalogue.subscription_id, name)
    response = _patch_plan(client, tenant, catalogue.plan_id, max_instances_per_customer=2)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "quota_below_usage"
    assert response.json()["error"]["details"] == {"limit": 2, "current": 3}
    assert (
        _patch_plan(client, tenant, catalogue.plan_id, max_instances_per_customer=3).status_code
        == 200
    )
    unlimited = _patch_plan(client, tenant, catalogue.plan_id, max_instances_per_customer=None)
    assert unlimited.json()["max_instances_per_customer"] is None


@pytest.mark.parametrize("backend_name", ["postgresql"])
def test_concurrent_registrations_never_pass_the_limit(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, backend: str, backend_name: str
) -> None:
    if backend != backend_name:
        pytest.skip("concurrency of row locks is a PostgreSQL property; SQLite has one writer")
    _patch_plan(client, tenant, catalogue.plan_id, max_instances_per_customer=5)
    register_instance(client, tenant, catalogue.subscription_id, "existing-1")
    register_instance(client, tenant, catalogue.subscription_id, "existing-2")
    barrier = threading.Barrier(20)
    outcomes: list[Any] = []

    def attempt(index: int) -> None:
        barrier.wait()
        response = client.post(
            "/v1/instances",
            json={
                "id": f"race-{index}",
                "subscription_id": catalogue.subscription_id,
                "cloud": "aws",
                "region": "r",
            },
            headers=tenant.admin,
        )
        outcomes.append((response.status_code, response.json().get("error", {}).get("code")))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == Counter({(201, None): 3, (409, "quota_exceeded"): 17})
    running = client.get(
        "/v1/instances", params={"customer_id": catalogue.customer_id}, headers=tenant.admin
    ).json()["data"]
    assert len([i for i in running if i["status"] == "running"]) == 5
