"""The real ``meterplane`` command in a subprocess, against the test databases."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, build_catalogue, register_instance


def run_cli(database_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METERPLANE_DATABASE_URL": database_url, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "meterplane.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_provider_create_prints_a_working_key(
    database_url: str, client: TestClient, factory: Any
) -> None:
    out = run_cli(database_url, "provider", "create", "--name", "Initech", "--json").stdout
    created = json.loads(out)
    assert created["provider_id"].startswith("prov_")
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    assert client.get("/v1/services", headers=headers).status_code == 200
    key = json.loads(
        run_cli(
            database_url,
            "provider",
            "key",
            "--provider",
            created["provider_id"],
            "--scope",
            "ingest",
            "--json",
        ).stdout
    )
    assert (
        client.post(
            "/v1/usage/samples",
            json={"samples": []},
            headers={"Authorization": f"Bearer {key['api_key']}"},
        ).status_code
        == 200
    )


def test_usage_import_csv_and_ndjson_then_show(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalogue = build_catalogue(client, tenant)
    register_instance(client, tenant, catalogue.subscription_id, "csv-1")
    csv_file = tmp_path / "samples.csv"
    csv_file.write_text(
        "instance_id,node_id,timestamp,cpu_cores,memory_gib,storage_gib\n"
        "csv-1,n1,2026-10-20T10:00:00Z,2,4.5,100\n"
        "csv-1,n2,2026-10-20T10:01:00Z,2,4.5,100\n"
        "csv-1,n1,2026-10-20T10:00:00,2,4.5,100\n"
        "csv-1,n1,2026-10-20T11:00:00Z,,4.5,100\n"
        "ghost,n1,2026-10-20T11:00:00Z,1,1,1\n"
    )
    # The CLI runs on the real clock; a wide retention keeps these fixed dates acceptable.
    monkeypatch.setenv("METERPLANE_USAGE_RETENTION_DAYS", "100000")
    env_url = database_url
    result = run_cli(
        env_url, "usage", "import", str(csv_file), "--provider", tenant.provider_id, "--json"
    )
    summary = json.loads(result.stdout)
    assert summary == {
        "rows": 5,
        "accepted": 2,
        "rejected": 3,
        "rejected_by_code": {"naive_timestamp": 1, "missing_field": 1, "unknown_instance": 1},
    }
    ndjson = tmp_path / "samples.ndjson"
    ndjson.write_text(
        json.dumps(
            {
                "instance_id": "csv-1",
                "node_id": "n1",
                "timestamp": "2026-10-20T11:00:00Z",
                "cpu_cores": 1.5,
                "memory_gib": 2,
                "storage_gib": 10,
            }
        )
        + "\n{oops\n"
    )
    text = run_cli(env_url, "usage", "import", str(ndjson), "--provider", tenant.provider_id).stdout
    assert "2 rows: 1 accepted, 1 rejected" in text
    assert "malformed_json: 1" in text

    shown = json.loads(
        run_cli(
            database_url,
            "usage",
            "show",
            "--provider",
            tenant.provider_id,
            "--customer",
            catalogue.customer_id,
            "--from",
            "2026-10-20T00:00:00Z",
            "--to",
            "2026-10-21T00:00:00Z",
            "--granularity",
            "hour",
            "--json",
        ).stdout
    )
    api = client.get(
        "/v1/usage",
        params={
            "customer_id": catalogue.customer_id,
            "from": "2026-10-20T00:00:00Z",
            "to": "2026-10-21T00:00:00Z",
            "granularity": "hour",
        },
        headers=tenant.admin,
    ).json()
    assert shown == api
    assert shown["totals"]["cpu_cores"] == "5.5"
    table = run_cli(
        database_url,
        "usage",
        "show",
        "--provider",
        tenant.provider_id,
        "--instance",
        "csv-1",
        "--from",
        "2026-10-20T00:00:00Z",
        "--to",
        "2026-10-21T00:00:00Z",
    ).stdout
    assert "total" in table and "5.5" in table


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            [
                "usage",
                "show",
                "--provider",
                "prov_x",
                "--instance",
                "i",
                "--from",
                "yesterday",
                "--to",
                "2026-10-21T00:00:00Z",
            ],
            "not an RFC 3339 timestamp",
        ),
        (
            [
                "usage",
                "show",
                "--provider",
                "prov_x",
                "--instance",
                "i",
                "--from",
                "2026-10-20T00:00:00",
                "--to",
                "2026-10-21T00:00:00Z",
            ],
            "has no UTC offset",
        ),
        (
            [
                "usage",
                "show",
                "--provider",
                "prov_x",
                "--instance",
                "i",
                "--from",
                "2026-10-20T00:00:00Z",
                "--to",
                "2026-10-21T00:00:00Z",
            ],
            "instance_not_found",
        ),
        (["provider", "create", "--name", "  "], "invalid_name"),
        (["provider", "key", "--provider", "prov_nope"], "provider_not_found"),
    ],
)
def test_bad_cli_input_fails_with_one_line_reason(
    database_url: str, factory: Any, args: list[str], reason: str
) -> None:
    result = run_cli(database_url, *args, ok=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0], result.stderr


def test_import_of_a_missing_file_fails_cleanly(database_url: str, factory: Any) -> None:
    result = run_cli(
        database_url, "usage", "import", "/nonexistent.csv", "--provider", "p", ok=False
    )
    assert result.returncode != 0
    assert "does not exist" in result.stderr
