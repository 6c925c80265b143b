"""Pricing as code: ``meterplane apply`` and the service function behind it."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.audit.models import AuditEntry
from meterplane.catalog.apply import ApplyResult, apply_service_file
from meterplane.catalog.models import Dimension, Plan, PlanPrice, Service
from meterplane.catalog.servicefile import ServiceFileInvalid
from tests.cli.test_cli import run_cli
from tests.conftest import Clock, Tenant, register_instance

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "postgres-service.yaml"


def example() -> str:
    return EXAMPLE.read_text()


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def apply(
    factory: sessionmaker[Session],
    tenant: Tenant,
    text: str,
    now: datetime,
    *,
    dry_run: bool = False,
) -> ApplyResult:
    with factory() as session, session.begin():
        return apply_service_file(session, tenant.provider_id, text, now=now, dry_run=dry_run)


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Service, Plan, PlanPrice, Dimension, AuditEntry)
        }


def plans_by_name(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    response = client.get("/v1/plans", headers=tenant.admin)
    assert response.status_code == 200, response.text
    return {plan["name"]: plan for plan in response.json()["data"]}


def test_the_example_file_builds_the_catalogue(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    result = apply(factory, tenant, example(), clock())
    assert [c.action for c in result.changes] == [
        "service.create",
        "plan.create",
        "plan.create",
        "price_version.add",
        "plan.create",
    ]
    services = client.get("/v1/services", headers=tenant.admin).json()["data"]
    assert [(s["name"], s["integrations"]) for s in services] == [
        ("Managed PostgreSQL", ["meterplaneMetering"])
    ]
    assert result.service_id == services[0]["id"]
    plans = plans_by_name(client, tenant)
    assert set(plans) == {"Free", "Standard", "Enterprise"}
    standard = plans["Standard"]
    assert standard["currency"] == "USD"
    assert standard["prices"] == {
        "cpu_cores": "0.04",
        "memory_gib": "0.005",
        "storage_gib": "0.00015",
    }
    assert (standard["max_instances_per_customer"], standard["require_payment_method"]) == (5, True)
    future = [v for v in standard["price_versions"] if v["effective_from"].startswith("2026-12")]
    assert future == [
        {
            "dimension": "cpu_cores",
            "unit_price": "0.045",
            "effective_from": "2026-12-01T00:00:00Z",
            "applies_to": "new_subscriptions",
        }
    ]
    assert plans["Free"]["max_instances_per_customer"] == 1
    assert plans["Free"]["require_payment_method"] is False
    assert plans["Enterprise"]["max_instances_per_customer"] is None
    assert plans["Enterprise"]["prices"]["replicas"] == "0.02"
    audit = client.get("/v1/audit-log", headers=tenant.admin).json()["data"]
    assert {e["actor"] for e in audit} == {"cli:apply"}
    assert len(audit) == 5


def test_applying_twice_changes_nothing_the_second_time(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    apply(factory, tenant, example(), clock())
    before = counts(factory)
    again = apply(factory, tenant, example(), clock())
    assert again.changes == [] and not again.applied
    assert counts(factory) == before
    # Still nothing once the future price version is in force.
    clock.set(datetime(2026, 12, 15, 9, 30, tzinfo=UTC))
    assert apply(factory, tenant, example(), clock()).changes == []
    assert counts(factory) == before


def test_a_dry_run_lists_the_changes_and_makes_none(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    before = counts(factory)
    result = apply(factory, tenant, example(), clock(), dry_run=True)
    assert result.dry_run and not result.applied and result.service_id is None
    lines = result.lines()
    assert "+ service Managed PostgreSQL (integrations: meterplaneMetering)" in lines
    assert "+ plan Standard (USD)" in lines
    assert (
        "+ price Standard cpu_cores 0.04 → 0.045 from 2026-12-01T00:00:00Z (new subscriptions only)"
    ) in lines
    assert counts(factory) == before
    assert client.get("/v1/plans", headers=tenant.admin).json()["data"] == []


def test_an_edited_file_makes_exactly_its_changes(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    apply(factory, tenant, example(), clock())
    before_plans = plans_by_name(client, tenant)
    text = edit(example(), 'cpu_cores: "0.04"       # per core-hour', 'cpu_cores: "0.05"')
    text = edit(text, "max_instances_per_customer: 1", "max_instances_per_customer: 3")
    text = edit(
        text,
        'replicas: "0.02"        # per node-hour, for high-availability clusters\n',
        'replicas: "0.02"\n'
        '  Pro:\n    currency: USD\n    prices:\n      cpu_cores: "0.03"\n      iops: "0.001"\n',
    )
    text = edit(
        text,
        "x-meterplane-quotas:\n",
        "x-meterplane-dimensions:\n"
        '  iops: {unit: kIOPS, display_name: "Provisioned IOPS"}\n'
        "x-meterplane-quotas:\n"
        "  Pro:\n"
        "    max_instances_per_customer: 10\n",
    )
    audit_before = counts(factory)["audit_log"]
    dry = apply(factory, tenant, text, clock(), dry_run=True)
    result = apply(factory, tenant, text, clock())
    assert dry.lines() == result.lines()
    assert result.lines() == [
        "+ dimension iops (unit: kIOPS)",
        "~ plan Free: max_instances_per_customer 1 → 3",
        "+ price Standard cpu_cores 0.04 → 0.05 from 2026-10-20T13:00:00Z",
        "+ plan Pro (USD)",
        "    prices: cpu_cores 0.03, iops 0.001",
        "    max_instances_per_customer 10, require_payment_method false",
    ]
    assert counts(factory)["audit_log"] == audit_before + 4
    plans = plans_by_name(client, tenant)
    assert plans["Free"]["max_instances_per_customer"] == 3
    assert plans["Enterprise"] == before_plans["Enterprise"]
    standard_cpu = [v for v in plans["Standard"]["price_versions"] if v["dimension"] == "cpu_cores"]
    assert [(v["unit_price"], v["effective_from"], v["applies_to"]) for v in standard_cpu] == [
        ("0.04", "1970-01-01T00:00:00Z", "all"),
        ("0.05", "2026-10-20T13:00:00Z", "all"),
        ("0.045", "2026-12-01T00:00:00Z", "new_subscriptions"),
    ]
    assert plans["Pro"]["prices"] == {"cpu_cores": "0.03", "iops": "0.001"}
    dimensions = client.get("/v1/dimensions", headers=tenant.admin).json()["data"]
    assert {
        "key": "iops",
        "unit": "kIOPS",
        "display_name": "Provisioned IOPS",
        "preset": False,
    } in (dimensions)
    # Converged: the same file again, within the hour or later, changes nothing.
    assert apply(factory, tenant, text, clock()).changes == []
    clock.set(clock() + timedelta(minutes=30))
    assert apply(factory, tenant, text, clock()).changes == []
    clock.set(datetime(2027, 1, 5, tzinfo=UTC))
    assert apply(factory, tenant, text, clock()).changes == []


def test_integrations_are_turned_off_and_on(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    apply(factory, tenant, example(), clock())
    off = edit(example(), "  - meterplaneMetering      #", "  #")
    off = edit(off, "x-meterplane-integrations:", "x-meterplane-integrations: []")
    result = apply(factory, tenant, off, clock())
    assert result.lines() == [
        "~ service Managed PostgreSQL: integrations [meterplaneMetering] → []"
    ]
    assert client.get("/v1/services", headers=tenant.admin).json()["data"][0]["integrations"] == []
    # Leaving the key out leaves integrations as they are.
    absent = edit(off, "x-meterplane-integrations: []", "")
    assert apply(factory, tenant, absent, clock()).changes == []


BAD_FILES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "negative price",
        'cpu_cores: "0.04"       # per core-hour=>cpu_cores: "-1"',
        [("x-meterplane-plans.Standard.prices.cpu_cores", "negative_price")],
    ),
    (
        "unknown currency",
        "  Free:\n    currency: USD=>  Free:\n    currency: ZZZ",
        [("x-meterplane-plans.Free.currency", "unknown_currency")],
    ),
    (
        "unknown dimension",
        'replicas: "0.02"=>gpu_hours: "0.02"',
        [("x-meterplane-plans.Enterprise.prices.gpu_hours", "unknown_dimension")],
    ),
    (
        "too many decimals",
        'memory_gib: "0.005"     #=>memory_gib: "0.0000000000001" #',
        [("x-meterplane-plans.Standard.prices.memory_gib", "too_many_decimals")],
    ),
    (
        "unknown integration",
        "  - meterplaneMetering=>  - meterplaneMetering\n  - stripeSync",
        [("x-meterplane-integrations[1]", "unknown_integration")],
    ),
    (
        "unknown key inside an extension",
        "  Enterprise:\n    currency: USD=>  Enterprise:\n    colour: gold\n    currency: USD",
        [("x-meterplane-plans.Enterprise.colour", "extra_forbidden")],
    ),
    (
        "price version not on an hour",
        '"2026-12-01T00:00:00Z"=>"2026-12-01T00:30:00Z"',
        [("x-meterplane-plans.Standard.price_versions[0].effective_from", "not_on_hour")],
    ),
    (
        "quota of a plan the file does not have",
        "  Free:\n    max_instances_per_customer: 1=>  Gold:\n    max_instances_per_customer: 1",
        [("x-meterplane-quotas.Gold", "unknown_plan")],
    ),
    (
        "several mistakes at once",
        'cpu_cores: "0.04"       # per core-hour=>cpu_cores: "-1"'
        "|  Free:\n    currency: USD=>  Free:\n    currency: ZZZ"
        '|replicas: "0.02"=>gpu_hours: "0.02"'
        "|max_instances_per_customer: null=>max_instances_per_customer: -2",
        [
            ("x-meterplane-plans.Standard.prices.cpu_cores", "negative_price"),
            ("x-meterplane-plans.Free.currency", "unknown_currency"),
            ("x-meterplane-plans.Enterprise.prices.gpu_hours", "unknown_dimension"),
            ("x-meterplane-quotas.Enterprise.max_instances_per_customer", "greater_than_equal"),
        ],
    ),
]


def _bad_text(edits: str) -> str:
    text = example()
    for change in edits.split("|"):
        old, new = change.split("=>")
        text = edit(text, old, new)
    return text


WHOLE_FILE_MISTAKES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("not a mapping", "- just\n- a list\n", [("(root)", "not_a_mapping")]),
    ("empty", "", [("(root)", "not_a_mapping")]),
    ("YAML syntax error", "name: [unclosed\nx-meterplane-plans: {}\n", [("line 2", "yaml_syntax")]),
    ("no name", "x-meterplane-plans: {}\n", [("name", "missing_service_name")]),
    (
        "plans not a mapping",
        "name: S\nx-meterplane-plans: [Free]\n",
        [("x-meterplane-plans", "not_a_mapping")],
    ),
    (
        "a typo in an extension name",
        "name: S\nx-meterplane-plan: {}\n",
        [("x-meterplane-plan", "unknown_extension")],
    ),
    (
        "a float-looking price stays exact, a text one is refused",
        "name: S\nx-meterplane-plans:\n  P:\n    currency: EUR\n"
        "    prices: {cpu_cores: 0.04, memory_gib: cheap}\n",
        [("x-meterplane-plans.P.prices.memory_gib", "invalid_price")],
    ),
]


def _assert_errors(exc: ServiceFileInvalid, expected: list[tuple[str, str]]) -> None:
    found = [(e.path, e.code) for e in exc.errors]
    for path, code in expected:
        assert any(p.startswith(path) and c == code for p, c in found), (path, code, found)
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    ("edits", "expected"),
    [(edits, expected) for _, edits, expected in BAD_FILES],
    ids=[name for name, _, _ in BAD_FILES],
)
def test_a_bad_file_reports_every_error_with_its_path_and_stores_nothing(
    tenant: Tenant,
    factory: sessionmaker[Session],
    clock: Clock,
    edits: str,
    expected: list[tuple[str, str]],
) -> None:
    before = counts(factory)
    with pytest.raises(ServiceFileInvalid) as caught:
        apply(factory, tenant, _bad_text(edits), clock())
    _assert_errors(caught.value, expected)
    assert counts(factory) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, expected) for _, text, expected in WHOLE_FILE_MISTAKES],
    ids=[name for name, _, _ in WHOLE_FILE_MISTAKES],
)
def test_a_malformed_file_is_refused(
    tenant: Tenant,
    factory: sessionmaker[Session],
    clock: Clock,
    text: str,
    expected: list[tuple[str, str]],
) -> None:
    before = counts(factory)
    with pytest.raises(ServiceFileInvalid) as caught:
        apply(factory, tenant, text, clock())
    _assert_errors(caught.value, expected)
    assert counts(factory) == before


def test_the_error_message_names_the_path_and_the_mistake(
    tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    text = edit(example(), 'cpu_cores: "0.04"       # per core-hour', 'cpu_cores: "-1"')
    with pytest.raises(ServiceFileInvalid) as caught:
        apply(factory, tenant, text, clock())
    assert [str(e) for e in caught.value.errors] == [
        "x-meterplane-plans.Standard.prices.cpu_cores: price is negative: -1 (negative_price)"
    ]


def _customer_on(client: TestClient, tenant: Tenant, plan_id: str, instances: int) -> str:
    customer = client.post(
        "/v1/customers",
        json={"name": "Globex", "email": "billing@globex.example"},
        headers=tenant.admin,
    ).json()
    subscription = client.post(
        "/v1/subscriptions",
        json={"customer_id": customer["id"], "plan_id": plan_id},
        headers=tenant.admin,
    ).json()
    for index in range(instances):
        register_instance(client, tenant, subscription["id"], f"pg-{index}")
    return str(customer["id"])


def test_changes_that_contradict_stored_state_roll_back_everything(
    client: TestClient, tenant: Tenant, factory: sessionmaker[Session], clock: Clock
) -> None:
    apply(factory, tenant, example(), clock())
    _customer_on(client, tenant, plans_by_name(client, tenant)["Free"]["id"], 1)
    before = counts(factory)
    text = edit(example(), "max_instances_per_customer: 1", "max_instances_per_customer: 0")
    text = edit(text, 'cpu_cores: "0.04"       # per core-hour', 'cpu_cores: "0.05"')
    text = edit(text, "  Enterprise:\n    currency: USD", "  Enterprise:\n    currency: EUR")
    text = edit(text, 'cpu_cores: "0.045"', 'cpu_cores: "0.046"')
    text = edit(text, 'replicas: "0.02"        # per node-hour, for high-availability clusters', "")
    with pytest.raises(ServiceFileInvalid) as caught:
        apply(factory, tenant, text, clock())
    assert sorted((e.path, e.code) for e in caught.value.errors) == [
        ("x-meterplane-plans.Enterprise.currency", "currency_change"),
        ("x-meterplane-plans.Enterprise.prices", "price_removed"),
        ("x-meterplane-plans.Standard.price_versions[0].prices.cpu_cores", "price_version_differs"),
        ("x-meterplane-quotas.Free.max_instances_per_customer", "quota_below_usage"),
    ]
    assert counts(factory) == before
    assert plans_by_name(client, tenant)["Standard"]["prices"]["cpu_cores"] == "0.04"


def test_an_unknown_provider_is_refused(factory: sessionmaker[Session], clock: Clock) -> None:
    with pytest.raises(Exception, match="not found"), factory() as session, session.begin():
        apply_service_file(session, "prov_nope", example(), now=clock())


# --- the real command ------------------------------------------------------------------------


def test_cli_dry_run_apply_and_apply_again(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    factory: sessionmaker[Session],
) -> None:
    dry = run_cli(
        database_url, "apply", str(EXAMPLE), "--provider", tenant.provider_id, "--dry-run"
    )
    assert "+ plan Standard (USD)" in dry.stdout
    assert "+ service Managed PostgreSQL (integrations: meterplaneMetering)" in dry.stdout
    assert "nothing changed" in dry.stdout
    assert client.get("/v1/plans", headers=tenant.admin).json()["data"] == []

    applied = run_cli(database_url, "apply", str(EXAMPLE), "--provider", tenant.provider_id)
    assert "applied 5 change(s)" in applied.stdout
    assert set(plans_by_name(client, tenant)) == {"Free", "Standard", "Enterprise"}
    audit_rows = counts(factory)["audit_log"]

    again = run_cli(database_url, "apply", str(EXAMPLE), "--provider", tenant.provider_id)
    assert again.stdout.strip() == "service Managed PostgreSQL: no changes"
    assert counts(factory)["audit_log"] == audit_rows

    as_json = json.loads(
        run_cli(
            database_url, "apply", str(EXAMPLE), "--provider", tenant.provider_id, "--json"
        ).stdout
    )
    assert as_json["changes"] == [] and as_json["applied"] is False


def test_cli_reads_the_provider_from_the_environment(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("METERPLANE_PROVIDER_ID", raising=False)
    missing = run_cli(database_url, "apply", str(EXAMPLE), ok=False)
    assert missing.returncode != 0
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "METERPLANE_PROVIDER_ID" in lines[0]

    monkeypatch.setenv("METERPLANE_PROVIDER_ID", tenant.provider_id)
    result = json.loads(run_cli(database_url, "apply", str(EXAMPLE), "--json").stdout)
    assert result["applied"] is True
    assert [c["action"] for c in result["changes"]][:2] == ["service.create", "plan.create"]


def test_cli_bad_file_lists_each_error_and_stores_nothing(
    database_url: str,
    tenant: Tenant,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        _bad_text(
            'cpu_cores: "0.04"       # per core-hour=>cpu_cores: "-1"'
            "|  Free:\n    currency: USD=>  Free:\n    currency: ZZZ"
        )
    )
    before = counts(factory)
    result = run_cli(database_url, "apply", str(bad), "--provider", tenant.provider_id, ok=False)
    assert result.returncode != 0
    assert "2 error(s), nothing changed" in result.stderr
    assert (
        "x-meterplane-plans.Standard.prices.cpu_cores: price is negative: -1 (negative_price)"
        in result.stderr
    )
    assert "x-meterplane-plans.Free.currency: unknown currency 'ZZZ'" in result.stderr
    assert counts(factory) == before

    as_json = run_cli(
        database_url, "apply", str(bad), "--provider", tenant.provider_id, "--json", ok=False
    )
    assert as_json.returncode != 0
    assert {e["code"] for e in json.loads(as_json.stdout)["errors"]} == {
        "negative_price",
        "unknown_currency",
    }

    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("name: [oops\n")
    broken = run_cli(database_url, "apply", str(syntax), "--provider", tenant.provider_id, ok=False)
    assert broken.returncode != 0 and "(yaml_syntax)" in broken.stderr
    assert counts(factory) == before

    gone = run_cli(
        database_url,
        "apply",
        str(tmp_path / "nope.yaml"),
        "--provider",
        tenant.provider_id,
        ok=False,
    )
    assert gone.returncode != 0 and "cannot read" in gone.stderr
