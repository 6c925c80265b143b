"""Concurrent batches for one instance never lose a node (the instance rows are locked)."""

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.metering.codecs import DecodedBatch
from meterplane.metering.ingest import ingest_samples
from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.metering.helpers import hourly, sample

NODES = 12


def test_concurrent_batches_of_different_nodes_all_count(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    clock: Clock,
    factory: sessionmaker[Session],
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL property; SQLite has one writer")
    register_instance(client, tenant, catalogue.subscription_id, "busy")
    barrier = threading.Barrier(NODES)
    errors: list[Any] = []

    def send(node: int) -> None:
        batch = DecodedBatch(
            rows=[sample("busy", "2026-10-20T11:02:00Z", node=f"n{node}", cpu=1, memory="2")]
        )
        barrier.wait()
        try:
            with factory() as session, session.begin():
                ingest_samples(session, tenant.provider_id, batch, now=clock())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(NODES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    [hour] = hourly(
        client, tenant, start="2026-10-20T11:00:00Z", end="2026-10-20T12:00:00Z", instance_id="busy"
    )
    assert hour["quantities"]["cpu_cores"] == str(NODES)
    assert hour["quantities"]["replicas"] == str(NODES)
    assert hour["quantities"]["memory_gib"] == str(2 * NODES)
