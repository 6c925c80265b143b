"""The demo seed and ``meterplane demo``: a usable provider, real usage, nothing duplicated."""

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.api.app import create_app
from meterplane.demo.billing import run_billing_cycle
from meterplane.demo.seed import CUSTOMERS, INSTANCES, DemoResult, seed_demo
from meterplane.settings import Settings
from tests.conftest import Clock

DAYS = 2
EXAMPLE_CODES = {
    "unknown_instance",
    "negative_value",
    "naive_timestamp",
    "timestamp_in_future",
    "instance_terminated",
    "too_many_decimals",
    "missing_field",
}


def _get(client: TestClient, key: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


def _snapshot(client: TestClient, result: DemoResult, clock: Clock) -> dict[str, Any]:
    key = result.admin_key
    customer_id = result.customer_ids[CUSTOMERS[0].name]
    return {
        "services": _get(client, key, "/v1/services")["data"],
        "plans": _get(client, key, "/v1/plans")["data"],
        "customers": _get(client, key, "/v1/customers")["data"],
        "subscriptions": _get(client, key, "/v1/subscriptions")["data"],
        "instances": _get(client, key, "/v1/instances")["data"],
        "usage": _get(
            client,
            key,
            "/v1/usage",
            customer_id=customer_id,
            **{"from": result.origin.isoformat(), "to": clock().isoformat()},
            granularity="hour",
        ),
        "rejections": _get(client, key, "/v1/usage/rejections", limit=1000)["data"],
    }


def test_seed_builds_a_catalogue_with_usage_and_rejections(
    factory: sessionmaker[Session], clock: Clock, client: TestClient
) -> None:
    result = seed_demo(factory, now=clock(), days=DAYS)
    assert result.created
    assert result.origin == clock() - timedelta(days=DAYS)
    assert result.samples_sent == result.samples_accepted > 1000
    key = result.admin_key

    assert {s["name"] for s in _get(client, key, "/v1/services")["data"]} == {
        "Managed PostgreSQL",
        "Managed Kafka",
    }
    plans = _get(client, key, "/v1/plans")["data"]
    assert len(plans) == 4
    assert all(p["currency"] == "USD" and p["prices"]["cpu_cores"] for p in plans)
    assert len(_get(client, key, "/v1/customers")["data"]) == len(CUSTOMERS) == 8
    instances = _get(client, key, "/v1/instances")["data"]
    assert len(instances) == len(INSTANCES) == 15
    assert {i["cloud"] for i in instances} == {"aws", "gcp", "azure"}
    assert [i["id"] for i in instances if i["status"] == "terminated"] == ["pg-initech-reporting"]

    # pg-northwind-prod: 3 nodes of 8 cores / 32 GiB / 500 GiB, resized to 16 cores / 64 GiB
    # at 0.45 of the story (2026-10-19 09:36 UTC): that hour bills its largest interval.
    hours = _get(
        client,
        key,
        "/v1/usage",
        instance_id="pg-northwind-prod",
        **{"from": "2026-10-18T12:00:00Z", "to": "2026-10-20T12:00:00Z"},
        granularity="hour",
    )["data"]
    by_hour = {row["start"]: row["quantities"] for row in hours}
    assert len(hours) == 48
    assert by_hour["2026-10-18T12:00:00Z"] == {
        "cpu_cores": "24",
        "memory_gib": "96",
        "storage_gib": "1500",
        "replicas": "3",
    }
    assert by_hour["2026-10-19T08:00:00Z"]["cpu_cores"] == "24"
    assert by_hour["2026-10-19T09:00:00Z"]["cpu_cores"] == "48"
    assert by_hour["2026-10-20T11:00:00Z"]["memory_gib"] == "192"

    # A customer's report sums all its instances.
    report = _get(
        client,
        key,
        "/v1/usage",
        customer_id=result.customer_ids["Northwind Analytics"],
        **{"from": "2026-10-18T00:00:00Z", "to": "2026-10-21T00:00:00Z"},
        granularity="day",
    )
    assert len(report["data"]) == 3
    assert Decimal(report["totals"]["cpu_cores"]) > 48 * 24

    rejections = _get(client, key, "/v1/usage/rejections", limit=100)["data"]
    assert {r["code"] for r in rejections} == EXAMPLE_CODES
    assert {r.code for r in result.rejections} == EXAMPLE_CODES


def test_seeding_twice_duplicates_nothing_and_tops_up_later_hours(
    factory: sessionmaker[Session], clock: Clock, client: TestClient
) -> None:
    first = seed_demo(factory, now=clock(), days=DAYS)
    before = _snapshot(client, first, clock)

    second = seed_demo(factory, now=clock(), days=DAYS)
    assert second.provider_id == first.provider_id and not second.created
    assert second.rejections == []
    assert _snapshot(client, second, clock) == before

    # Each run mints a key and revokes the previous one.
    response = client.get("/v1/services", headers={"Authorization": f"Bearer {first.admin_key}"})
    assert response.status_code == 401

    # An hour later, a run adds that hour and leaves the earlier ones as they were.
    clock.set(clock() + timedelta(hours=1))
    third = seed_demo(factory, now=clock(), days=DAYS)
    after = _snapshot(client, third, clock)
    assert {k: v for k, v in after.items() if k != "usage"} == {
        k: v for k, v in before.items() if k != "usage"
    }
    old_hours = before["usage"]["data"]
    assert after["usage"]["data"][: len(old_hours)] == old_hours
    assert len(after["usage"]["data"]) == len(old_hours) + 1
    assert after["usage"]["data"][-1]["quantities"]["cpu_cores"] != "0"


def test_cli_demo_no_serve_prints_a_working_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    script = Path(sys.executable).parent / "meterplane"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "meterplane.cli.main"]
    completed = subprocess.run(
        [*command, "demo", "--no-serve", "--days", "1", "--port", "8123"],
        env={**os.environ, "METERPLANE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    key = re.search(r"admin key\s+(mp_admin_\S+)", out)
    provider = re.search(r"provider id\s+(prov_\S+)", out)
    assert key and provider, out
    assert "http://127.0.0.1:8123" in out
    assert out.count("curl -s") == 3 and key.group(1) in out

    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        customers = _get(client, key.group(1), "/v1/customers")["data"]
        assert len(customers) == 8
        rejections = _get(client, key.group(1), "/v1/usage/rejections")["data"]
        assert {r["code"] for r in rejections} == EXAMPLE_CODES


def test_the_demo_runs_a_billing_cycle_once(
    client: TestClient, factory: sessionmaker[Session], clock: Clock
) -> None:
    clock.set(datetime(2026, 11, 3, 9, 30, tzinfo=UTC))
    result = seed_demo(factory, now=clock(), days=5)
    billing = run_billing_cycle(factory, result.provider_id, now=clock())
    assert billing.period == "2026-10"
    assert billing.issued >= 1 and billing.pending >= 1
    again = run_billing_cycle(factory, result.provider_id, now=clock())
    assert again == billing
    headers = {"Authorization": f"Bearer {result.admin_key}"}
    listed = client.get("/v1/invoices", params={"period": "2026-10"}, headers=headers).json()
    issued = [i for i in listed["data"] if i["status"] == "issued"]
    assert len(issued) == billing.issued
    assert all(i["number"].startswith("INV-2026-") for i in issued)
    profile = client.get("/v1/provider/profile", headers=headers).json()
    assert profile["legal_name"] == "Demo Cloud Inc."
