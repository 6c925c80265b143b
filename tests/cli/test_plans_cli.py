"""``meterplane plans`` and ``meterplane audit`` in a subprocess, checked against the API."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.catalog.apply import apply_service_file
from meterplane.kit.time import utc_now
from tests.catalog.test_apply import example
from tests.cli.test_cli import run_cli
from tests.conftest import Clock, Tenant, register_instance


def _seed(factory: sessionmaker[Session], tenant: Tenant, clock: Clock) -> None:
    """The example catalogue; the API clock follows the real one, as the CLI's does."""
    clock.set(utc_now())
    with factory() as session, session.begin():
        apply_service_file(session, tenant.provider_id, example(), now=clock())


def _plans(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    data = client.get("/v1/plans", headers=tenant.admin).json()["data"]
    return {plan["name"]: plan for plan in data}


def test_plans_list_and_show_match_the_api(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    factory: sessionmaker[Session],
    clock: Clock,
) -> None:
    _seed(factory, tenant, clock)
    provider = ("--provider", tenant.provider_id)
    listed = json.loads(run_cli(database_url, "plans", "list", *provider, "--json").stdout)
    api = client.get("/v1/plans", headers=tenant.admin).json()
    assert listed == api

    standard = _plans(client, tenant)["Standard"]
    shown = json.loads(
        run_cli(database_url, "plans", "show", standard["id"], *provider, "--json").stdout
    )
    assert shown == client.get(f"/v1/plans/{standard['id']}", headers=tenant.admin).json()

    table = run_cli(database_url, "plans", "list", *provider).stdout
    for name in ("Free", "Standard", "Enterprise", "unlimited", "cpu_cores 0.04"):
        assert name in table
    text = run_cli(database_url, "plans", "show", standard["id"], *provider).stdout
    assert "max_instances_per_customer: 5" in text
    assert "require_payment_method: true" in text
    assert "2026-12-01T00:00:00Z  cpu_cores: 0.045  (new_subscriptions)" in text


def test_plans_update_changes_quotas_and_name_and_is_audited(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    factory: sessionmaker[Session],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(factory, tenant, clock)
    plan_id = _plans(client, tenant)["Free"]["id"]
    monkeypatch.setenv("METERPLANE_PROVIDER_ID", tenant.provider_id)

    updated = json.loads(
        run_cli(
            database_url,
            "plans",
            "update",
            plan_id,
            "--max-instances",
            "4",
            "--require-payment-method",
            "--json",
        ).stdout
    )
    assert (updated["max_instances_per_customer"], updated["require_payment_method"]) == (4, True)
    run_cli(database_url, "plans", "update", plan_id, "--unlimited", "--no-require-payment-method")
    run_cli(database_url, "plans", "update", plan_id, "--name", "Hobby")
    plan = client.get(f"/v1/plans/{plan_id}", headers=tenant.admin).json()
    assert (plan["name"], plan["max_instances_per_customer"], plan["require_payment_method"]) == (
        "Hobby",
        None,
        False,
    )

    entries = json.loads(
        run_cli(
            database_url, "audit", "list", "--object-type", "plan", "--object-id", plan_id, "--json"
        ).stdout
    )["data"]
    api = client.get(
        "/v1/audit-log",
        params={"object_type": "plan", "object_id": plan_id},
        headers=tenant.admin,
    ).json()["data"]
    assert entries == api
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("cli:plans", "plan.updated"),
        ("cli:plans", "plan.updated"),
        ("cli:plans", "plan.updated"),
        ("cli:apply", "plan.created"),
    ]
    assert entries[0]["before"]["name"] == "Free" and entries[0]["after"]["name"] == "Hobby"
    assert entries[2]["after"]["max_instances_per_customer"] == 4

    everything = json.loads(run_cli(database_url, "audit", "list", "--json").stdout)["data"]
    assert len(everything) == 8  # 5 from apply, 3 updates
    table = run_cli(database_url, "audit", "list", "--object-type", "service").stdout
    assert "service.created" in table and "plan.updated" not in table


def test_plans_update_refuses_a_limit_below_current_usage(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    factory: sessionmaker[Session],
    clock: Clock,
) -> None:
    _seed(factory, tenant, clock)
    enterprise = _plans(client, tenant)["Enterprise"]["id"]
    customer = client.post(
        "/v1/customers",
        json={"name": "Globex", "email": "billing@globex.example"},
        headers=tenant.admin,
    ).json()["id"]
    client.patch(
        f"/v1/customers/{customer}", json={"default_payment_method": "pm_1"}, headers=tenant.admin
    )
    subscription = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer, "plan_id": enterprise},
        headers=tenant.admin,
    ).json()["id"]
    for name in ("a", "b"):
        register_instance(client, tenant, subscription, f"pg-{name}")
    result = run_cli(
        database_url,
        "plans",
        "update",
        enterprise,
        "--provider",
        tenant.provider_id,
        "--max-instances",
        "1",
        ok=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1 and "(quota_below_usage)" in lines[0]
    assert _plans(client, tenant)["Enterprise"]["max_instances_per_customer"] is None


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["plans", "show", "plan_nope", "--provider", "prov_x"], "plan_not_found"),
        (
            ["plans", "update", "plan_nope", "--provider", "p", "--max-instances", "2"],
            "plan_not_found",
        ),
        (
            ["plans", "update", "plan_x", "--provider", "p", "--max-instances", "2", "--unlimited"],
            "not both",
        ),
        (["plans", "update", "plan_x", "--provider", "p"], "nothing to change"),
        (["plans", "list"], "METERPLANE_PROVIDER_ID"),
        (["audit", "list"], "METERPLANE_PROVIDER_ID"),
    ],
)
def test_bad_plans_and_audit_input_fails_with_one_line(
    database_url: str,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    reason: str,
) -> None:
    monkeypatch.delenv("METERPLANE_PROVIDER_ID", raising=False)
    result = run_cli(database_url, *args, ok=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0], result.stderr
