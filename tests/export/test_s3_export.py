"""Export to a moto S3 server: content, formats, exactly once, late usage, failures."""

import csv
import gzip
import io
import json
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.export.models import ExportedHour, ExportTarget
from meterplane.export.runner import run_provider
from meterplane.export.service import make_sink
from meterplane.export.sinks import S3Sink
from meterplane.export.worker import run_due
from meterplane.kit.decimals import strip_zeros
from meterplane.settings import Settings
from tests.conftest import Clock, Tenant, build_catalogue, register_instance
from tests.export.conftest import (
    BUCKET,
    H9,
    H10,
    H11,
    KEYS,
    NOW,
    Setup,
    list_keys,
    put_target,
    read,
)
from tests.metering.helpers import hourly, post_samples, sample

PRICES = {"cpu_cores": "0.04", "memory_gib": "0.005", "storage_gib": "0.0002", "replicas": ""}
DIMENSIONS = ("cpu_cores", "memory_gib", "storage_gib", "replicas")


def key_for(provider_id: str, hour: str, revision: int = 0, ext: str = "csv") -> str:
    day, hh = hour[:8], hour[9:11]
    return f"exports/{day[:4]}/{day[4:6]}/{day[6:]}/{hh}/{provider_id}-{hour}Z-r{revision}.{ext}"


def parse(body: bytes, fmt: str) -> list[dict[str, str]]:
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
        rows = table.to_pylist()
        return [
            {
                k: (
                    v.strftime("%Y-%m-%dT%H:%M:%SZ")
                    if k == "hour_start"
                    else ("" if v is None else str(strip_zeros(v) if isinstance(v, Decimal) else v))
                )
                for k, v in row.items()
            }
            for row in rows
        ]
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.decode())))
    return [json.loads(line) for line in body.decode().splitlines()]


def expected_rows(client: TestClient, setup: Setup, hour: str) -> dict[tuple[str, str], str]:
    """Per instance and dimension, the quantity the usage API reports for that hour."""
    start = f"2026-10-20T{hour}:00:00Z"
    end = f"2026-10-20T{int(hour) + 1:02d}:00:00Z"
    out: dict[tuple[str, str], str] = {}
    for instance in setup.instances:
        data = hourly(client, setup.tenant, start=start, end=end, instance_id=instance)
        quantities = data[0]["quantities"]
        if any(Decimal(v) for v in quantities.values()):
            for key in DIMENSIONS:
                out[(instance, key)] = str(strip_zeros(Decimal(quantities[key])))
    return out


def as_quantities(rows: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    return {
        (r["instance_id"], r["dimension"]): str(strip_zeros(Decimal(r["quantity"]))) for r in rows
    }


def test_hours_are_exported_as_the_hourly_usage(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    provider = usage.tenant.provider_id
    put_target(client, usage.tenant, moto_endpoint, prefix="/exports/")
    report = run_due(factory, now=NOW, settings=settings)
    assert report.errors == [] and report.hours_exported == 2
    assert list_keys(s3) == [
        key_for(provider, "20261020T0900"),
        key_for(provider, "20261020T1000"),
        "exports/_meterplane/last_success.json",
    ]
    for hour, name in (("09", "20261020T0900"), ("10", "20261020T1000")):
        rows = parse(read(s3, key_for(provider, name)), "csv")
        assert as_quantities(rows) == expected_rows(client, usage, hour)
        for row in rows:
            assert row["provider_id"] == provider
            assert row["service_id"] == usage.catalogue.service_id
            assert row["service_name"] == "Postgres"
            assert row["plan_id"] == usage.catalogue.plan_id
            assert row["customer_id"] == usage.catalogue.customer_id
            assert row["external_billing_id"] == f"ext-{row['instance_id']}"
            assert (row["cloud"], row["region"]) == ("aws", "eu-west-1")
            assert row["hour_start"] == f"2026-10-20T{hour}:00:00Z"
            assert row["unit_price"] == PRICES[row["dimension"]]
            assert row["currency"] == "USD"
        assert {r["unit"] for r in rows} <= {"core-hours", "GiB-hours", "replica-hours"}
    marker = json.loads(read(s3, "exports/_meterplane/last_success.json"))
    assert marker["exported_through"] == "2026-10-20T11:00:00Z"
    assert marker["services"][usage.catalogue.service_id]["exported_through"] == (
        "2026-10-20T11:00:00Z"
    )
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["exported_through"] == "2026-10-20T11:00:00Z"
    assert status["error"] is None and status["pending_hours"] == 0


@pytest.mark.parametrize(
    ("fmt", "use_gzip", "ext"),
    [
        ("csv", True, "csv.gz"),
        ("jsonl", False, "jsonl"),
        ("jsonl", True, "jsonl.gz"),
        ("parquet", False, "parquet"),
        ("parquet", True, "parquet"),
    ],
)
def test_formats_round_trip(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
    fmt: str,
    use_gzip: bool,
    ext: str,
) -> None:
    provider = usage.tenant.provider_id
    put_target(client, usage.tenant, moto_endpoint, prefix="exports", format=fmt, gzip=use_gzip)
    assert run_due(factory, now=NOW, settings=settings).errors == []
    body = read(s3, key_for(provider, "20261020T0900", ext=ext))
    if use_gzip and fmt != "parquet":
        assert body[:2] == b"\x1f\x8b"
    rows = parse(body, fmt)
    assert as_quantities(rows) == expected_rows(client, usage, "09")
    assert {r["unit_price"] for r in rows if r["dimension"] == "cpu_cores"} == {"0.04"}
    assert {r["hour_start"] for r in rows} == {"2026-10-20T09:00:00Z"}


def test_each_hour_is_written_once_and_late_usage_makes_a_revision(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
    clock: Clock,
) -> None:
    provider = usage.tenant.provider_id
    put_target(client, usage.tenant, moto_endpoint, prefix="exports")
    run_due(factory, now=NOW, settings=settings)
    first = {key: read(s3, key) for key in list_keys(s3)}
    second = run_due(factory, now=NOW, settings=settings)
    assert (second.hours_exported, second.revisions, second.objects) == (0, 0, 0)
    assert {key: read(s3, key) for key in list_keys(s3)} == first

    # Late usage for 09:00 (a new node, and a higher value on a known one).
    post_samples(
        client,
        usage.tenant,
        [
            sample("pg-2", "2026-10-20T09:40:00Z", node="node-9", cpu=1, memory="2"),
            sample("pg-1", "2026-10-20T09:05:00Z", cpu=3, memory="8", storage="100"),
        ],
    )
    clock.set(NOW.replace(minute=20))
    report = run_due(factory, now=clock(), settings=settings)
    assert (report.hours_exported, report.revisions) == (0, 1)
    revised = key_for(provider, "20261020T0900", revision=1)
    assert revised in list_keys(s3)
    assert read(s3, key_for(provider, "20261020T0900")) == first[key_for(provider, "20261020T0900")]
    rows = parse(read(s3, revised), "csv")
    assert as_quantities(rows) == expected_rows(client, usage, "09")
    assert as_quantities(rows)[("pg-2", "cpu_cores")] == "1.5"
    assert as_quantities(rows)[("pg-1", "cpu_cores")] == "5"
    # Nothing changed since: no revision 2.
    again = run_due(factory, now=clock(), settings=settings)
    assert again.revisions == 0
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["revised_hours"] == 1
    with factory() as session:
        revisions = dict(
            session.execute(
                select(ExportedHour.hour_start, ExportedHour.revision).where(
                    ExportedHour.provider_id == provider
                )
            ).all()
        )
    assert revisions == {H9: 1, H10: 0}


def test_a_bucket_refusing_writes_keeps_the_hour_until_it_recovers(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    put_target(client, usage.tenant, moto_endpoint, prefix="exports")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(deny))
    report = run_due(factory, now=NOW, settings=settings)
    assert report.hours_exported == 0 and len(report.errors) == 1
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["error"]["code"] == "access_denied"
    assert status["error"]["hour"] == "2026-10-20T09:00:00Z"
    assert status["exported_through"] == "2026-10-20T09:00:00Z"
    assert status["consecutive_failures"] == 1
    # Backoff: the next scheduled run within a minute does not even try.
    assert run_due(factory, now=NOW.replace(second=30), settings=settings).skipped == 1

    s3.delete_bucket_policy(Bucket=BUCKET)
    later = NOW.replace(minute=5)
    report = run_due(factory, now=later, settings=settings)
    assert report.errors == [] and report.hours_exported == 2
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["error"] is None and status["exported_through"] == "2026-10-20T11:00:00Z"
    assert key_for(usage.tenant.provider_id, "20261020T0900") in list_keys(s3)


def _failing_sink_factory(failures: list[int], calls: list[str]) -> Any:
    """The real S3 sink, with a before-send hook answering 503 while ``failures[0] > 0``."""

    def hook(request: Any, **_kwargs: Any) -> AWSResponse | None:
        calls.append(request.method)
        if failures[0] > 0:
            failures[0] -= 1
            return AWSResponse(request.url, 503, {}, _Raw(b"<Error><Code>SlowDown</Code></Error>"))
        return None

    def make(target: ExportTarget, settings: Settings) -> S3Sink:
        sink = make_sink(target, settings)
        assert isinstance(sink, S3Sink)
        sink.client.meta.events.register("before-send.s3.PutObject", hook)
        return sink

    return make


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Any:
        yield self._body


def test_server_errors_are_retried_then_stored(
    clock: Clock,
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    put_target(client, usage.tenant, moto_endpoint, prefix="exports")
    calls: list[str] = []
    # Two 503s: botocore's own retries get the first hour through.
    report = run_due(
        factory, now=NOW, settings=settings, sink_factory=_failing_sink_factory([2], calls)
    )
    assert report.errors == [] and report.hours_exported == 2
    assert len(calls) == 2 + 2 + 1  # 2 failures + 2 hours + 1 marker

    # The store keeps failing: the hour is kept and the error stored.
    post_samples(client, usage.tenant, [sample("pg-1", "2026-10-20T12:10:00Z")])
    later = NOW.replace(hour=13, minute=40)
    clock.set(later)
    calls.clear()
    report = run_due(
        factory, now=later, settings=settings, sink_factory=_failing_sink_factory([100], calls)
    )
    assert report.hours_exported == 0
    assert len(calls) == 5  # the call and botocore's 4 retries
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["error"]["code"] == "server_error"
    assert status["error"]["hour"] == "2026-10-20T11:00:00Z"
    assert status["pending_hours"] == 2

    report = run_provider(factory, usage.tenant.provider_id, settings=settings, now=later)
    assert report.hours_exported == 2 and report.errors == []


def test_unreachable_endpoint_is_reported(
    client: TestClient, factory: sessionmaker[Session], settings: Settings, usage: Setup
) -> None:
    put_target(client, usage.tenant, "http://127.0.0.1:9", prefix="exports")
    report = run_due(factory, now=NOW, settings=settings)
    assert report.hours_exported == 0
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["error"]["code"] == "unreachable"
    assert status["exported_through"] == "2026-10-20T09:00:00Z"


def test_only_services_with_the_integration_are_exported(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    other = build_catalogue(client, usage.tenant, suffix="-off")
    register_instance(client, usage.tenant, other.subscription_id, "off-1")
    post_samples(client, usage.tenant, [sample("off-1", "2026-10-20T09:10:00Z")])
    put_target(client, usage.tenant, moto_endpoint, prefix="exports")
    run_due(factory, now=NOW, settings=settings)
    rows = parse(read(s3, key_for(usage.tenant.provider_id, "20261020T0900")), "csv")
    assert {r["instance_id"] for r in rows} == {"pg-1", "pg-2"}


def test_api_never_returns_secrets_and_is_scoped_by_provider(
    client: TestClient,
    usage: Setup,
    moto_endpoint: str,
    make_tenant: Any,
) -> None:
    out = put_target(client, usage.tenant, moto_endpoint, external_id="ext-id-secret")
    text = json.dumps(out) + client.get("/v1/export/target", headers=usage.tenant.admin).text
    for secret in (*KEYS.values(), "ext-id-secret"):
        assert secret not in text
    assert out["credentials"] == "access_keys" and out["has_external_id"] is True
    other: Tenant = make_tenant("Other Cloud")
    assert client.get("/v1/export/target", headers=other.admin).status_code == 404
    assert client.get("/v1/export/status", headers=other.admin).json()["configured"] is False
    response = client.post(
        "/v1/export/run",
        json={"from": "2026-10-20T09:00:00Z", "to": "2026-10-20T11:00:00Z"},
        headers=other.admin,
    )
    assert response.status_code == 404


def test_storing_credentials_needs_the_secret_key(
    factory: sessionmaker[Session], database_url: str, tenant: Tenant, clock: Clock
) -> None:
    from meterplane.api.app import create_app

    app = create_app(Settings(database_url=database_url), session_factory=factory, clock=clock)
    with TestClient(app) as plain:
        response = plain.put(
            "/v1/export/target", json={"bucket": "b-1", **KEYS}, headers=tenant.admin
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "secret_key_missing"


def test_backfill_through_the_api(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    s3: Any,
    moto_endpoint: str,
) -> None:
    put_target(
        client, usage.tenant, moto_endpoint, prefix="exports", start_at="2026-10-20T10:00:00Z"
    )
    response = client.post(
        "/v1/export/run",
        json={"from": "2026-10-20T09:00:00Z", "to": "2026-10-20T12:00:00Z"},
        headers=usage.tenant.admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # 11:00 is not closed yet at 12:00 (15 min lag + 10 min ingest tolerance).
    assert body["hours_exported"] == 2 and body["error"] is None
    status = client.get("/v1/export/status", headers=usage.tenant.admin).json()
    assert status["exported_from"] == "2026-10-20T09:00:00Z"
    assert status["exported_through"] == "2026-10-20T11:00:00Z"
    assert H11 > H10
