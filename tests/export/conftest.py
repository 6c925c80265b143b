"""A moto S3 server on 127.0.0.1 for the export tests, and a provider with usage to export."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from meterplane.settings import Settings
from tests.conftest import Catalogue, Tenant, build_catalogue, register_instance
from tests.metering.helpers import post_samples, sample

BUCKET = "usage-exports"
KEYS = {"access_key_id": "AKIAEXPORTTEST", "secret_access_key": "exporter-secret-value"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    """A fresh moto (reset) with the export bucket created; the client tests read with."""
    httpx.post(f"{moto_endpoint}/moto-api/reset")
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-for-export",
        export_allow_endpoint_url=True,
        export_local_dir=tmp_path / "exports",
    )


NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
H9 = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
H10 = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)
H11 = datetime(2026, 10, 20, 11, 0, tzinfo=UTC)


@dataclass
class Setup:
    tenant: Tenant
    catalogue: Catalogue
    instances: list[str]


def enable_metering(client: TestClient, tenant: Tenant, service_id: str) -> None:
    response = client.patch(
        f"/v1/services/{service_id}",
        json={"integrations": ["meterplaneMetering"]},
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def usage(client: TestClient, tenant: Tenant) -> Setup:
    """Two instances with usage in hours 09 and 10 (closed at 12:00), one sample at 11."""
    catalogue = build_catalogue(client, tenant)
    enable_metering(client, tenant, catalogue.service_id)
    instances = ["pg-1", "pg-2"]
    for instance in instances:
        register_instance(client, tenant, catalogue.subscription_id, instance)
    post_samples(
        client,
        tenant,
        [
            sample("pg-1", "2026-10-20T09:05:00Z", cpu=2, memory="8", storage="100"),
            sample("pg-1", "2026-10-20T09:05:00Z", node="node-2", cpu=2, memory="8.5"),
            sample("pg-2", "2026-10-20T09:40:00Z", cpu="0.5", memory="1.25", storage="20"),
            sample("pg-1", "2026-10-20T10:15:00Z", cpu=4, memory="16", storage="100"),
            sample("pg-1", "2026-10-20T11:10:00Z", cpu=4, memory="16", storage="100"),
        ],
    )
    return Setup(tenant, catalogue, instances)


def put_target(
    client: TestClient, tenant: Tenant, endpoint: str | None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"start_at": "2026-10-20T09:00:00Z"}
    if endpoint is not None:
        body |= {"kind": "s3", "bucket": BUCKET, "endpoint_url": endpoint, **KEYS}
    body |= fields
    response = client.put("/v1/export/target", json=body, headers=tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def list_keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def read(s3: Any, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


Hourly = Callable[[str, datetime], dict[str, str]]
