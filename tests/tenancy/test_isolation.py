"""A key of provider A gets 404 on every object of provider B, and never B's data."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Catalogue, Tenant, build_catalogue, register_instance


@pytest.fixture
def two_tenants(
    client: TestClient, make_tenant: Callable[[str], Tenant]
) -> tuple[Tenant, Tenant, Catalogue]:
    owner = make_tenant("Owner Co")
    intruder = make_tenant("Intruder Co")
    catalogue = build_catalogue(client, owner)
    register_instance(client, owner, catalogue.subscription_id, "db-owner-1")
    build_catalogue(client, intruder, suffix="-x")
    return owner, intruder, catalogue


def test_every_read_route_hides_another_providers_objects(
    client: TestClient, two_tenants: tuple[Tenant, Tenant, Catalogue]
) -> None:
    owner, intruder, cat = two_tenants
    paths = [
        f"/v1/services/{cat.service_id}",
        f"/v1/plans/{cat.plan_id}",
        f"/v1/customers/{cat.customer_id}",
        f"/v1/subscriptions/{cat.subscription_id}",
        "/v1/instances/db-owner-1",
    ]
    for path in paths:
        assert client.get(path, headers=owner.admin).status_code == 200, path
        response = client.get(path, headers=intruder.admin)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"].endswith("_not_found")
        assert "Globex" not in response.text


def test_write_routes_refuse_references_to_another_providers_objects(
    client: TestClient, two_tenants: tuple[Tenant, Tenant, Catalogue]
) -> None:
    _owner, intruder, cat = two_tenants
    attempts = [
        (
            "/v1/plans",
            {"service_id": cat.service_id, "name": "x", "currency": "USD", "prices": {}},
            "service_not_found",
        ),
        (
            "/v1/subscriptions",
            {"customer_id": cat.customer_id, "plan_id": cat.plan_id},
            "customer_not_found",
        ),
        (
            "/v1/instances",
            {"id": "stolen", "subscription_id": cat.subscription_id, "cloud": "aws", "region": "x"},
            "subscription_not_found",
        ),
        ("/v1/instances/db-owner-1/terminate", None, "instance_not_found"),
    ]
    for path, body, code in attempts:
        response = client.post(path, json=body, headers=intruder.admin)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == code


def test_lists_and_usage_are_scoped(
    client: TestClient, two_tenants: tuple[Tenant, Tenant, Catalogue]
) -> None:
    owner, intruder, cat = two_tenants
    for path in (
        "/v1/services",
        "/v1/plans",
        "/v1/customers",
        "/v1/subscriptions",
        "/v1/instances",
    ):
        mine = client.get(path, headers=owner.admin).json()["data"]
        theirs = client.get(path, headers=intruder.admin).json()["data"]
        assert mine and {item["id"] for item in mine}.isdisjoint(item["id"] for item in theirs)
    query = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    assert (
        client.get(
            "/v1/usage", params={**query, "customer_id": cat.customer_id}, headers=intruder.admin
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/v1/usage", params={**query, "instance_id": "db-owner-1"}, headers=intruder.admin
        ).status_code
        == 404
    )
    # A sample for another provider's instance is refused as unknown, and stays out of its usage.
    sample = {
        "instance_id": "db-owner-1",
        "node_id": "n1",
        "timestamp": "2026-10-20T11:00:00Z",
        "cpu_cores": 4,
        "memory_gib": 8,
        "storage_gib": 10,
    }
    result = client.post("/v1/usage/samples", json={"samples": [sample]}, headers=intruder.ingest)
    assert result.json()["rejected"][0]["code"] == "unknown_instance"
    usage = client.get(
        "/v1/usage", params={**query, "instance_id": "db-owner-1"}, headers=owner.admin
    ).json()
    assert usage["totals"]["cpu_cores"] == "0"
    owner_rejections = client.get("/v1/usage/rejections", headers=owner.admin).json()["data"]
    assert owner_rejections == []
    assert len(client.get("/v1/usage/rejections", headers=intruder.admin).json()["data"]) == 1


def test_authentication_and_scopes(client: TestClient, tenant: Tenant) -> None:
    missing = client.get("/v1/services")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = client.get("/v1/services", headers={"Authorization": "Bearer mp_admin_nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    # An ingest key may send samples but not read or change the catalogue.
    forbidden = client.get("/v1/services", headers=tenant.ingest)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "insufficient_scope"
    accepted = client.post("/v1/usage/samples", json={"samples": []}, headers=tenant.ingest)
    assert accepted.status_code == 200
    assert (
        client.post("/v1/usage/samples", json={"samples": []}, headers=tenant.admin).status_code
        == 200
    )


def test_revoked_key_is_refused(client: TestClient, tenant: Tenant, factory, clock) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from meterplane.tenancy.models import ApiKey
    from meterplane.tenancy.service import revoke_api_key

    with factory() as session, session.begin():
        key = session.scalars(
            select(ApiKey).where(ApiKey.provider_id == tenant.provider_id, ApiKey.scope == "admin")
        ).one()
        revoke_api_key(session, tenant.provider_id, key.id, now=clock())
    assert client.get("/v1/services", headers=tenant.admin).status_code == 401


def test_keys_are_stored_hashed(tenant: Tenant, factory) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from meterplane.tenancy.models import ApiKey

    with factory() as session:
        hashes = session.scalars(select(ApiKey.key_hash)).all()
    assert tenant.admin_key not in hashes
    assert all(len(h) == 64 for h in hashes)
