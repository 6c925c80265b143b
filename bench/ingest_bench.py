"""API batch ingest throughput through real HTTP, database write and rollups included.

Meterplane's app (``meterplane.api.app:create_app``) is served by uvicorn with one worker on
a free 127.0.0.1 port, against a fresh SQLite file and/or a fresh PostgreSQL database.
An httpx client posts batches of 10,000 samples as JSON: 1,000 instances of 1–3 nodes,
one sample per node per consecutive 5-minute interval, timestamps within the last hours.
Every response must report all samples accepted.

Baseline, measured in the same run and served the same way: a bare FastAPI endpoint that
only parses the same batches with a Pydantic model and returns the count (bare_app.py).

    .venv/bin/python bench/ingest_bench.py                      # both databases
    .venv/bin/python bench/ingest_bench.py --db sqlite --batches 30
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from benchlib import Fleet, create_fleet, print_table, temporary_database, utc_now, uvicorn_server
from meterplane.kit.db import create_db_engine

BATCH_SIZE = 10_000
INTERVAL = timedelta(minutes=5)


@dataclass
class Result:
    name: str
    samples: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.samples / self.seconds


def make_bodies(fleet: Fleet, batches: int, *, now: datetime, seed: int = 7) -> list[bytes]:
    """Consecutive intervals ending before ``now``, every node once per interval, in order."""
    rng = random.Random(seed)
    nodes = [
        (fleet.instance_ids[i], node, i)
        for i in range(len(fleet.instance_ids))
        for node in fleet.node_ids(i)
    ]
    sizes = [rng.choice([1, 2, 4, 8, 16]) for _ in fleet.instance_ids]
    disks = [rng.choice([20, 50, 100, 250, 500]) for _ in fleet.instance_ids]
    samples: list[dict[str, object]] = []
    total = batches * BATCH_SIZE
    intervals = -(-total // len(nodes))
    latest = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5 + 5)
    first = latest - INTERVAL * (intervals - 1)
    for k in range(intervals):
        start = first + INTERVAL * k
        for instance_id, node_id, i in nodes:
            moment = start + timedelta(seconds=rng.randrange(300))
            cpu = sizes[i] * (2 if rng.random() < 0.05 else 1)
            samples.append(
                {
                    "instance_id": instance_id,
                    "node_id": node_id,
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "cpu_cores": cpu,
                    "memory_gib": round(cpu * 3.75 + rng.randrange(1000) / 1000, 3),
                    "storage_gib": disks[i] + rng.randrange(10_000) / 8,
                }
            )
    samples = samples[:total]
    return [
        json.dumps({"samples": samples[b : b + BATCH_SIZE]}).encode()
        for b in range(0, total, BATCH_SIZE)
    ]


def post_all(
    base: str,
    bodies: list[bytes],
    headers: dict[str, str],
    check: Callable[[httpx.Response], None],
    concurrency: int,
) -> float:
    """Post every body (``concurrency`` requests in flight); returns elapsed seconds."""
    client = httpx.Client(base_url=base, timeout=300, headers=headers)
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                body = queue.pop()
            try:
                response = client.post(
                    "/v1/usage/samples",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                check(response)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    client.close()
    if errors:
        raise errors[0]
    return elapsed


def _expect(field: str) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        payload = response.json()
        if payload.get(field) != BATCH_SIZE or payload.get("rejected"):
            raise RuntimeError(f"not every sample was accepted: {str(payload)[:500]}")

    return check


def run_baseline(bodies: list[bytes], warmup: list[bytes], concurrency: int) -> Result:
    with uvicorn_server("bare_app:create_app") as base:
        post_all(base, warmup, {}, _expect("accepted"), 1)
        seconds = post_all(base, bodies, {}, _expect("accepted"), concurrency)
    return Result("bare FastAPI+Pydantic parse", len(bodies) * BATCH_SIZE, seconds)


def run_meterplane(
    backend: str, batches: int, instances: int, concurrency: int
) -> tuple[Result, list[bytes], list[bytes]]:
    with temporary_database(backend) as url:
        engine = create_db_engine(url)
        now = utc_now()
        fleet = create_fleet(
            engine,
            instances=instances,
            nodes=[1, 2, 3],
            instances_per_customer=[1, 2, 3, 4, 5],
            now=now - timedelta(days=1),
        )
        engine.dispose()
        everything = make_bodies(fleet, batches + 1, now=now)
        warmup, bodies = everything[:1], everything[1:]
        headers = {"Authorization": f"Bearer {fleet.ingest_key}"}
        with uvicorn_server(
            "meterplane.api.app:create_app", env={"METERPLANE_DATABASE_URL": url}
        ) as base:
            post_all(base, warmup, headers, _expect("accepted"), 1)
            seconds = post_all(base, bodies, headers, _expect("accepted"), concurrency)
    return Result(f"Meterplane on {backend}", batches * BATCH_SIZE, seconds), warmup, bodies


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per server")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    args = parser.parse_args(argv)

    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: list[Result] = []
    bodies: list[bytes] = []
    warmup: list[bytes] = []
    for backend in backends:
        print(f"ingest: {backend} ({args.batches} x {BATCH_SIZE} samples) ...", flush=True)
        result, warmup, bodies = run_meterplane(
            backend, args.batches, args.instances, args.concurrency
        )
        results.append(result)
    print("ingest: bare parse baseline ...", flush=True)
    baseline = run_baseline(bodies, warmup, args.concurrency)

    rows = []
    summary: list[dict[str, object]] = []
    for result in [baseline, *results]:
        ratio = result.rate / baseline.rate
        rows.append(
            [
                result.name,
                f"{result.samples:,}",
                f"{result.seconds:.2f}",
                f"{result.rate:,.0f}",
                f"{ratio:.0%}",
            ]
        )
        summary.append({"name": result.name, "rate": result.rate, "ratio": ratio})
    print()
    print(
        f"API batch ingest, {BATCH_SIZE:,} samples per POST, concurrency {args.concurrency}, "
        "uvicorn 1 worker on 127.0.0.1"
    )
    print_table(["server", "samples", "seconds", "samples/s", "vs bare parse"], rows)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
