"""The Omnistrate-compatible layout, the local directory target, and S3 with real IAM auth."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.export.formats import OMNISTRATE_FIELDS
from meterplane.export.worker import run_due
from meterplane.settings import Settings
from tests.export.conftest import BUCKET, NOW, Setup, list_keys, put_target, read

GIB = 1 << 30


def test_omnistrate_layout(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    put_target(client, usage.tenant, moto_endpoint, layout="omnistrate")
    assert run_due(factory, now=NOW, settings=settings).errors == []
    plan, sub = usage.catalogue.plan_id, usage.catalogue.subscription_id
    keys = list_keys(s3)
    assert keys == [
        "_meterplane/last_success.json",
        f"omnistrate-metering/Postgres/PROD/{plan}/2026/10/20/09/{sub}.json",
        f"omnistrate-metering/Postgres/PROD/{plan}/2026/10/20/10/{sub}.json",
        "omnistrate-metering/last_success_export.json",
    ]
    records = json.loads(
        read(s3, f"omnistrate-metering/Postgres/PROD/{plan}/2026/10/20/09/{sub}.json"),
        parse_float=Decimal,
    )
    assert all(tuple(r) == OMNISTRATE_FIELDS for r in records)
    by = {(r["instanceId"], r["dimension"]): r for r in records}
    assert set(by) == {
        (i, d)
        for i in ("pg-1", "pg-2")
        for d in (
            "cpu_core_hours",
            "memory_byte_hours",
            "storage_allocated_byte_hours",
            "replica_hours",
        )
    }
    # pg-1 at 09: two nodes, 2 + 2 cores, 8 + 8.5 GiB, 100 + 100 GiB.
    assert by[("pg-1", "cpu_core_hours")]["value"] == 4
    assert by[("pg-1", "memory_byte_hours")]["value"] == int(Decimal("16.5") * GIB)
    assert by[("pg-1", "storage_allocated_byte_hours")]["value"] == 200 * GIB
    assert by[("pg-1", "replica_hours")]["value"] == 2
    assert by[("pg-2", "memory_byte_hours")]["value"] == int(Decimal("1.25") * GIB)
    assert by[("pg-1", "cpu_core_hours")]["pricePerUnit"] == Decimal("0.04")
    assert by[("pg-1", "memory_byte_hours")]["pricePerUnit"] * GIB == Decimal("0.005")
    first = by[("pg-1", "cpu_core_hours")]
    assert first["timestamp"] == "2026-10-20T09:00:00Z"
    assert first["organizationId"] == usage.tenant.provider_id
    assert first["organizationName"] == "Acme Cloud"
    assert first["customerId"] == usage.catalogue.customer_id
    assert first["customerEmail"] == "billing@globex.example"
    assert first["subscriptionId"] == sub
    assert first["externalPayerId"] == "ext-pg-1"
    assert first["serviceId"] == usage.catalogue.service_id
    assert first["serviceName"] == "Postgres"
    assert first["serviceEnvironmentType"] == "PROD"
    assert (first["productTierId"], first["productTierName"]) == (plan, "Standard")
    assert (first["cloudProvider"], first["region"]) == ("aws", "eu-west-1")
    for empty in ("serviceEnvironmentId", "hostClusterId", "customNetworkId", "podName"):
        assert first[empty] == ""
    marker = json.loads(read(s3, "omnistrate-metering/last_success_export.json"))
    assert marker == {
        f"Postgres:PROD:{plan}": {
            "last_processed_to": "2026-10-20T11:00:00Z",
            "last_updated_at": "2026-10-20T12:00:00Z",
        }
    }


def test_local_directory_target(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, usage: Setup
) -> None:
    out = put_target(client, usage.tenant, None, kind="local", format="jsonl")
    root = Path(out["directory"])
    assert root == settings.export_local_dir / usage.tenant.provider_id
    assert run_due(factory, now=NOW, settings=settings).errors == []
    provider = usage.tenant.provider_id
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        f"2026/10/20/09/{provider}-20261020T0900Z-r0.jsonl",
        f"2026/10/20/10/{provider}-20261020T1000Z-r0.jsonl",
        "_meterplane/last_success.json",
    ]
    rows = [json.loads(line) for line in (root / files[0]).read_text().splitlines()]
    assert {(r["instance_id"], r["dimension"]): r["quantity"] for r in rows}[
        ("pg-2", "cpu_cores")
    ] == "0.5"
    marker = json.loads((root / "_meterplane/last_success.json").read_text())
    assert marker["exported_through"] == "2026-10-20T11:00:00Z"


@pytest.fixture
def auth_moto(moto_endpoint: str) -> Iterator[str]:
    """A reset moto; IAM authorization, once the test turns it on, is off again afterwards
    (moto keeps that switch process-wide: it would deny the other tests' anonymous calls)."""
    httpx.post(f"{moto_endpoint}/moto-api/reset")
    yield moto_endpoint
    httpx.post(
        f"{moto_endpoint}/moto-api/reset-auth",
        content="inf",
        headers={"Content-Type": "text/plain"},
    )
    httpx.post(f"{moto_endpoint}/moto-api/reset")


def _iam_user(iam: Any, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName=f"{name}-policy",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


PUT_ONLY = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}


def test_put_only_user_and_assume_role(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    auth_moto: str,
) -> None:
    plain = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam = boto3.client("iam", endpoint_url=auth_moto, region_name="us-east-1", **plain)
    boto3.client("s3", endpoint_url=auth_moto, region_name="us-east-1", **plain).create_bucket(
        Bucket=BUCKET
    )
    reader = _iam_user(iam, "reader", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    put_only = _iam_user(iam, "exporter", [PUT_ONLY])
    nothing = _iam_user(iam, "nobody", [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}])
    caller = _iam_user(
        iam, "assumer", [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
    )
    account = boto3.client("sts", endpoint_url=auth_moto, region_name="us-east-1", **plain)
    account_id = account.get_caller_identity()["Account"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:user/assumer"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "meterplane-ext-1"}},
            }
        ],
    }
    role = iam.create_role(RoleName="meterplane-export", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName="meterplane-export",
        PolicyName="put-only",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [PUT_ONLY]}),
    )
    response = httpx.post(
        f"{auth_moto}/moto-api/reset-auth", content="0", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200

    s3_reader = boto3.client(
        "s3",
        endpoint_url=auth_moto,
        region_name="us-east-1",
        aws_access_key_id=reader["access_key_id"],
        aws_secret_access_key=reader["secret_access_key"],
    )
    provider = usage.tenant.provider_id

    # Without PutObject: AccessDenied, stored.
    put_target(client, usage.tenant, auth_moto, prefix="a", **nothing)
    run_due(factory, now=NOW, settings=settings)
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["error"]["code"] == "access_denied"

    # PutObject alone is enough: the exporter never lists, reads or heads.
    put_target(client, usage.tenant, auth_moto, prefix="b", **put_only)
    report = run_due(factory, now=NOW, settings=settings)
    assert report.errors == [] and report.hours_exported == 2

    # A role assumed with an external id, from a user that may only assume roles.
    put_target(
        client,
        usage.tenant,
        auth_moto,
        prefix="c",
        role_arn=role["Role"]["Arn"],
        external_id="meterplane-ext-1",
        **caller,
    )
    report = run_due(factory, now=NOW, settings=settings)
    assert report.errors == [] and report.hours_exported == 2
    listed = s3_reader.list_objects_v2(Bucket=BUCKET)["Contents"]
    keys = sorted(item["Key"] for item in listed)
    assert f"b/2026/10/20/09/{provider}-20261020T0900Z-r0.csv" in keys
    assert f"c/2026/10/20/10/{provider}-20261020T1000Z-r0.csv" in keys
    assert "c/_meterplane/last_success.json" in keys
    assert not any(key.startswith("a/") for key in keys)
