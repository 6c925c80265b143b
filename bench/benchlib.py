"""Shared plumbing for the benchmarks: throwaway databases, a tenant with instances, servers.

Everything here talks to 127.0.0.1 only. Databases are created with unique names and
dropped afterwards; SQLite files live in temporary directories.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from meterplane.catalog.service import create_plan, create_service
from meterplane.customers.service import (
    create_customer,
    create_subscription,
    register_instance,
)
from meterplane.kit import migrate
from meterplane.kit.db import create_db_engine, make_session_factory
from meterplane.tenancy.models import ApiKeyScope
from meterplane.tenancy.service import create_api_key, create_provider

POSTGRES_ADMIN_URL = os.environ.get(
    "METERPLANE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@contextlib.contextmanager
def temporary_database(backend: str) -> Iterator[str]:
    """A migrated, empty database URL; removed when the block ends."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="meterplane_bench_")
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        try:
            _migrate(url)
            yield url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    name = f"meterplane_bench_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


@dataclass
class Fleet:
    """A provider with customers, each owning a few instances of one or more nodes."""

    provider_id: str
    ingest_key: str
    admin_key: str
    instance_ids: list[str]
    instance_pks: list[int]
    nodes_per_instance: list[int]
    customer_of_instance: list[str]

    def node_ids(self, index: int) -> list[str]:
        return [f"{self.instance_ids[index]}-n{n}" for n in range(self.nodes_per_instance[index])]


def create_fleet(
    engine: Engine,
    *,
    instances: int,
    nodes: list[int],
    instances_per_customer: list[int],
    now: datetime,
    created: datetime | None = None,
) -> Fleet:
    """Provider, plan, customers and instances, made through the services (admission included)."""
    factory = make_session_factory(engine)
    created = created or now
    with factory() as session, session.begin():
        provider = create_provider(session, "Bench Cloud", now=created)
        ingest_key = create_api_key(session, provider.id, ApiKeyScope.ingest, name="b", now=created)
        admin_key = create_api_key(session, provider.id, ApiKeyScope.admin, name="b", now=created)
        service = create_service(session, provider.id, "Postgres", now=created)
        plan = create_plan(
            session,
            provider.id,
            service_id=service.id,
            name="Standard",
            currency="USD",
            prices={
                "cpu_cores": Decimal("0.04"),
                "memory_gib": Decimal("0.005"),
                "storage_gib": Decimal("0.0002"),
            },
            now=created,
        )
        instance_ids: list[str] = []
        customers: list[str] = []
        pks: list[int] = []
        customer_index = 0
        while len(instance_ids) < instances:
            count = instances_per_customer[customer_index % len(instances_per_customer)]
            customer = create_customer(
                session,
                provider.id,
                name=f"Customer {customer_index}",
                email=f"billing{customer_index}@example.com",
                external_billing_id=None,
                now=created,
            )
            subscription = create_subscription(
                session, provider.id, customer_id=customer.id, plan_id=plan.id, now=created
            )
            for _ in range(min(count, instances - len(instance_ids))):
                instance_id = f"inst-{len(instance_ids):05d}"
                instance = register_instance(
                    session,
                    provider.id,
                    instance_id=instance_id,
                    subscription_id=subscription.id,
                    cloud="aws",
                    region="eu-west-1",
                    external_billing_id=None,
                    now=created,
                )
                instance_ids.append(instance_id)
                customers.append(customer.id)
                pks.append(instance.pk)
            customer_index += 1
        return Fleet(
            provider_id=provider.id,
            ingest_key=ingest_key.secret,
            admin_key=admin_key.secret,
            instance_ids=instance_ids,
            instance_pks=pks,
            nodes_per_instance=[nodes[i % len(nodes)] for i in range(instances)],
            customer_of_instance=customers,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(app: str, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``module:factory`` with one uvicorn worker on a free loopback port."""
    port = free_port()
    command = [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "--factory",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _python_path(), **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server {app} exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {app} did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _python_path() -> str:
    """The bench directory (for bare_app), then whatever the caller's path already holds."""
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT / "bench"), *([existing] if existing else [])])


def utc_now() -> datetime:
    return datetime.now(UTC)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


PAGE_TARGET_MS = 100.0
WARM_UP_REQUESTS = 5


def time_pages(
    client: Any, pages: dict[str, str], *, requests: int, backend: str
) -> list[dict[str, object]]:
    """p50/p95 in ms of GET on each page (after a warm-up), through the whole app in-process."""
    results: list[dict[str, object]] = []
    for name, path in pages.items():
        timings = []
        for i in range(requests + WARM_UP_REQUESTS):
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (path, response.status_code)
            if i >= WARM_UP_REQUESTS:
                timings.append(elapsed)
        timings.sort()
        results.append(
            {
                "db": backend,
                "page": name,
                "p50": statistics.median(timings),
                "p95": timings[max(0, int(len(timings) * 0.95) - 1)],
            }
        )
    return results


def print_page_times(title: str, results: list[dict[str, object]]) -> None:
    print(title)
    print_table(
        ["database", "page", "p50 ms", "p95 ms", "target"],
        [
            [
                str(r["db"]),
                str(r["page"]),
                f"{r['p50']:.1f}",
                f"{r['p95']:.1f}",
                f"p95 < {PAGE_TARGET_MS:.0f} ms: "
                + ("ok" if float(str(r["p95"])) < PAGE_TARGET_MS else "MISSED"),
            ]
            for r in results
        ],
    )


def page_bench_main(
    argv: list[str],
    description: str,
    run: Any,
    title: Any,
) -> list[dict[str, object]]:
    """The command line shared by the page benchmarks: ``run(backend, requests)`` per database."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    results: list[dict[str, object]] = []
    for backend in backends:
        results += run(backend, args.requests)
    print_page_times(title(args.requests), results)
    return results
