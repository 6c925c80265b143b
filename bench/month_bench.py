"""Month totals per customer: Meterplane's rollups against DuckDB over the raw samples.

A month of usage (default 1,000 instances of 1–3 nodes, 30 days, one sample per node per
5-minute interval: about 17M samples) is generated deterministically with numpy, written
to Parquet for DuckDB, and loaded into Meterplane through the real ingest service,
``meterplane.metering.ingest.ingest_samples`` in batches of 10,000 rows, one transaction
per batch (``--load rollup`` instead computes the node maxima with numpy and feeds them to
the same rollup code, ``meterplane.metering.rollup.apply_node_maxima``, skipping row
validation).

Then, each in a fresh subprocess (time = best of --repeat runs, memory = peak RSS):

* Meterplane: month totals per customer and dimension from the hourly rollups, the query
  a monthly close runs (exact integers, turned into Decimal);
* DuckDB (baseline): the same totals from the raw samples in Parquet: max per node per
  interval, sum over nodes per interval, max per hour, sum per customer over the month.

Both answers are compared exactly.

    .venv/bin/python bench/month_bench.py                       # full size, SQLite
    .venv/bin/python bench/month_bench.py --db postgresql --instances 200 --days 7
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import Fleet, create_fleet, print_table, temporary_database

BATCH_SIZE = 10_000
INTERVAL_SECONDS = 300
INTERVALS_PER_DAY = 288
SCALE = 10**9
MONTH_START = datetime(2025, 6, 1, tzinfo=UTC)
DIMENSIONS = ("cpu_cores", "memory_gib", "storage_gib", "replicas")


@dataclass
class Plan:
    """The deterministic shape of the fleet: nodes, their sizes and their customers."""

    instances: int
    nodes_per_instance: np.ndarray
    instances_per_customer: list[int]
    node_instance: np.ndarray  # node → instance index
    cpu: np.ndarray  # node base cores, nano
    storage: np.ndarray  # node base storage, nano
    growth: np.ndarray  # storage growth per interval, nano
    offset: np.ndarray  # seconds into each interval the node reports

    @property
    def nodes(self) -> int:
        return len(self.node_instance)


def make_plan(instances: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    nodes_per_instance = rng.integers(1, 4, size=instances)
    per_customer: list[int] = []
    while sum(per_customer) < instances:
        per_customer.append(int(rng.integers(1, 6)))
    node_instance = np.repeat(np.arange(instances), nodes_per_instance)
    sizes = rng.choice(np.array([1, 2, 4, 8, 16]), size=instances)
    disks = rng.choice(np.array([20, 50, 100, 250, 500, 1000]), size=instances)
    count = len(node_instance)
    return Plan(
        instances=instances,
        nodes_per_instance=nodes_per_instance,
        instances_per_customer=per_customer,
        node_instance=node_instance,
        cpu=sizes[node_instance].astype(np.int64) * SCALE,
        storage=disks[node_instance].astype(np.int64) * SCALE,
        growth=rng.integers(0, 2_000_000, size=count).astype(np.int64),  # < 0.002 GiB
        offset=rng.integers(0, INTERVAL_SECONDS, size=count),
    )


def day_samples(plan: Plan, day: int, seed: int) -> dict[str, np.ndarray]:
    """Every node once per interval of one day, interval-major, as raw sample columns."""
    rng = np.random.default_rng([seed, day])
    k = np.arange(day * INTERVALS_PER_DAY, (day + 1) * INTERVALS_PER_DAY)
    intervals = np.repeat(k, plan.nodes)
    node = np.tile(np.arange(plan.nodes), len(k))
    size = len(node)
    burst = np.where(rng.random(size) < 0.03, 2, 1)  # a node briefly scaled up
    cpu = plan.cpu[node] * burst
    memory = cpu * 15 // 4 + rng.integers(0, 1000, size=size) * 1_000_000  # + 0.001 GiB steps
    storage = plan.storage[node] + plan.growth[node] * intervals
    epoch = int(MONTH_START.timestamp())
    return {
        "instance": plan.node_instance[node].astype(np.int32),
        "node": node.astype(np.int32),
        "ts": (epoch + intervals * INTERVAL_SECONDS + plan.offset[node]).astype(np.int64),
        "cpu": cpu.astype(np.int64),
        "mem": memory.astype(np.int64),
        "sto": storage.astype(np.int64),
    }


def to_parquet(columns: dict[str, np.ndarray], path: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.register("day", columns)
    con.execute(f"COPY (SELECT * FROM day) TO '{path}' (FORMAT parquet)")
    con.close()


# ---------------------------------------------------------------- loading into Meterplane


def _decimal(nano: int) -> Decimal:
    return Decimal(nano).scaleb(-9)


def load_service(
    factory: Any, fleet: Fleet, plan: Plan, columns: dict[str, np.ndarray], now: datetime
) -> int:
    """Batches of rows as the API would decode them, through ``ingest_samples``."""
    from meterplane.metering.codecs import DecodedBatch
    from meterplane.metering.ingest import ingest_samples

    node_ids = [
        node_id
        for i in range(plan.instances)
        for node_id in fleet.node_ids(i)  # same order as make_plan's node numbering
    ]
    instance_ids = fleet.instance_ids
    total = len(columns["node"])
    accepted = 0
    for start in range(0, total, BATCH_SIZE):
        part = slice(start, start + BATCH_SIZE)
        rows = [
            {
                "instance_id": instance_ids[i],
                "node_id": node_ids[n],
                "timestamp": datetime.fromtimestamp(ts, UTC).isoformat(),
                "cpu_cores": _decimal(c),
                "memory_gib": _decimal(m),
                "storage_gib": _decimal(s),
            }
            for i, n, ts, c, m, s in zip(
                columns["instance"][part].tolist(),
                columns["node"][part].tolist(),
                columns["ts"][part].tolist(),
                columns["cpu"][part].tolist(),
                columns["mem"][part].tolist(),
                columns["sto"][part].tolist(),
                strict=True,
            )
        ]
        with factory() as session, session.begin():
            result = ingest_samples(session, fleet.provider_id, DecodedBatch(rows=rows), now=now)
        if result.rejected:
            raise RuntimeError(f"rejected rows: {result.rejected[:3]}")
        accepted += result.accepted
    return accepted


def load_rollup(
    factory: Any, fleet: Fleet, plan: Plan, columns: dict[str, np.ndarray], now: datetime
) -> int:
    """Node maxima computed with numpy, merged by the ingest's own rollup code."""
    from sqlalchemy import select

    from meterplane.customers.models import Instance
    from meterplane.metering.rollup import apply_node_maxima

    del now
    node_ids = [node_id for i in range(plan.instances) for node_id in fleet.node_ids(i)]
    pks = fleet.instance_pks
    epoch = int(MONTH_START.timestamp())
    total = len(columns["node"])
    for start in range(0, total, BATCH_SIZE):
        part = slice(start, start + BATCH_SIZE)
        interval_numbers = (columns["ts"][part] - epoch) // INTERVAL_SECONDS
        maxima: dict[tuple[int, str, datetime], list[int]] = {}
        hour_of: dict[datetime, datetime] = {}
        starts: dict[int, datetime] = {}
        for i, n, k, c, m, s in zip(
            columns["instance"][part].tolist(),
            columns["node"][part].tolist(),
            interval_numbers.tolist(),
            columns["cpu"][part].tolist(),
            columns["mem"][part].tolist(),
            columns["sto"][part].tolist(),
            strict=True,
        ):
            interval = starts.get(k)
            if interval is None:
                interval = MONTH_START + timedelta(seconds=k * INTERVAL_SECONDS)
                starts[k] = interval
                hour_of[interval] = interval.replace(minute=0)
            key = (pks[i], node_ids[n], interval)
            old = maxima.get(key)
            maxima[key] = (
                [c, m, s] if old is None else [max(old[0], c), max(old[1], m), max(old[2], s)]
            )
        touched = sorted({key[0] for key in maxima})
        with factory() as session, session.begin():
            session.execute(  # the same lock, in the same order, as ingest_samples takes
                select(Instance.pk)
                .where(Instance.provider_id == fleet.provider_id, Instance.pk.in_(touched))
                .order_by(Instance.pk)
                .with_for_update()
            ).all()
            apply_node_maxima(session.connection(), fleet.provider_id, maxima, hour_of)
    return total


# ---------------------------------------------------------------- measured in subprocesses


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def month_totals(session: Any, provider_id: str, start: datetime, end: datetime) -> Any:
    """Unit-hours per customer and dimension over [start, end): the close's own query."""
    from meterplane.invoicing.content import customers_with_usage
    from meterplane.kit.quantity import from_scaled

    return {
        customer: {key: from_scaled(totals.get(key, 0)) for key in DIMENSIONS}
        for customer, totals in customers_with_usage(session, provider_id, start, end).items()
    }


def measure_meterplane(
    url: str, provider_id: str, start: datetime, end: datetime, repeat: int
) -> None:
    from meterplane.kit.db import create_db_engine, make_session_factory

    factory = make_session_factory(create_db_engine(url))
    before = _peak_rss_mib()
    times = []
    totals: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        with factory() as session, session.begin():
            totals = month_totals(session, provider_id, start, end)
        times.append(time.perf_counter() - started)
    answer = {
        customer: [str(values[key]) for key in DIMENSIONS] for customer, values in totals.items()
    }
    print(
        json.dumps(
            {"seconds": min(times), "rss_before": before, "peak": _peak_rss_mib(), "totals": answer}
        )
    )


def measure_duckdb(
    directory: str, customers_file: str, start: datetime, end: datetime, repeat: int
) -> None:
    import duckdb

    customer_of = np.load(customers_file)
    before = _peak_rss_mib()
    first = int(start.timestamp()) // 3600
    last = int(end.timestamp()) // 3600
    query = f"""
        WITH node_intervals AS (
            SELECT instance, node, ts // {INTERVAL_SECONDS} AS k,
                   max(cpu) AS cpu, max(mem) AS mem, max(sto) AS sto
            FROM read_parquet('{directory}/*.parquet')
            GROUP BY instance, node, k
        ), instance_intervals AS (
            SELECT instance, k, sum(cpu) AS cpu, sum(mem) AS mem, sum(sto) AS sto,
                   count(*) * {SCALE} AS replicas
            FROM node_intervals GROUP BY instance, k
        ), hourly AS (
            SELECT instance, k // 12 AS hour, max(cpu) AS cpu, max(mem) AS mem,
                   max(sto) AS sto, max(replicas) AS replicas
            FROM instance_intervals GROUP BY instance, hour
        )
        SELECT c.customer, sum(h.cpu), sum(h.mem), sum(h.sto), sum(h.replicas)
        FROM hourly h JOIN customers c ON c.instance = h.instance
        WHERE h.hour >= {first} AND h.hour < {last}
        GROUP BY c.customer
    """
    times = []
    rows: list[Any] = []
    for _ in range(repeat):
        con = duckdb.connect()
        con.register(
            "customers",
            {"instance": np.arange(len(customer_of), dtype=np.int32), "customer": customer_of},
        )
        started = time.perf_counter()
        rows = con.execute(query).fetchall()
        times.append(time.perf_counter() - started)
        con.close()
    answer = {
        str(row[0]): [str(Decimal(int(v)).scaleb(-9).normalize()) for v in row[1:]] for row in rows
    }
    print(
        json.dumps(
            {"seconds": min(times), "rss_before": before, "peak": _peak_rss_mib(), "totals": answer}
        )
    )


def _run_measure(args: list[str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _same(meter: dict[str, list[str]], duck: dict[str, list[str]], customers: list[str]) -> bool:
    def canon(values: list[str]) -> list[Decimal]:
        return [Decimal(v) for v in values]

    mapped = {str(customers.index(c)): canon(v) for c, v in meter.items()}
    return mapped == {k: canon(v) for k, v in duck.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--load", choices=["service", "rollup"], default="service")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each query")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure:
        kind, *rest = args.measure
        start = MONTH_START
        end = MONTH_START + timedelta(days=args.days)
        if kind == "meterplane":
            measure_meterplane(rest[0], rest[1], start, end, args.repeat)
        else:
            measure_duckdb(rest[0], rest[1], start, end, args.repeat)
        return {}

    from meterplane.kit.db import create_db_engine, make_session_factory

    plan = make_plan(args.instances, args.seed)
    start, end = MONTH_START, MONTH_START + timedelta(days=args.days)
    now = end + timedelta(hours=1)
    samples = plan.nodes * INTERVALS_PER_DAY * args.days
    print(
        f"month: {args.instances} instances, {plan.nodes} nodes, "
        f"{len(plan.instances_per_customer)} customers, {args.days} days, "
        f"{samples:,} samples, {args.db}, load={args.load}",
        flush=True,
    )
    loader = load_service if args.load == "service" else load_rollup
    with (
        tempfile.TemporaryDirectory(prefix="meterplane_month_") as tmp,
        temporary_database(args.db) as url,
    ):
        engine = create_db_engine(url)
        fleet = create_fleet(
            engine,
            instances=args.instances,
            nodes=plan.nodes_per_instance.tolist(),
            instances_per_customer=plan.instances_per_customer,
            now=start - timedelta(days=1),
        )
        factory = make_session_factory(engine)
        parquet_dir = Path(tmp) / "samples"
        parquet_dir.mkdir()
        load_seconds = 0.0
        loaded = 0
        for day in range(args.days):
            columns = day_samples(plan, day, args.seed)
            to_parquet(columns, parquet_dir / f"day_{day:02d}.parquet")
            started = time.perf_counter()
            loaded += loader(factory, fleet, plan, columns, now)
            load_seconds += time.perf_counter() - started
            print(
                f"  day {day + 1}/{args.days}: {loaded:,} samples loaded, "
                f"{loaded / load_seconds:,.0f} samples/s",
                flush=True,
            )
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()

        customer_index = {c: n for n, c in enumerate(dict.fromkeys(fleet.customer_of_instance))}
        customers_file = Path(tmp) / "customers.npy"
        np.save(
            customers_file,
            np.array([customer_index[c] for c in fleet.customer_of_instance], dtype=np.int32),
        )
        common = ["--days", str(args.days), "--repeat", str(args.repeat)]
        meter = _run_measure([*common, "--measure", "meterplane", url, fleet.provider_id])
        duck = _run_measure([*common, "--measure", "duckdb", str(parquet_dir), str(customers_file)])

    same = _same(meter["totals"], duck["totals"], list(customer_index))
    speedup = duck["seconds"] / meter["seconds"]
    print()
    print(
        f"Month totals per customer ({len(customer_index)} customers, {samples:,} samples, "
        f"{args.days} days) on {args.db}; best of {args.repeat}; peak RSS of a fresh process"
    )
    print_table(
        ["source", "seconds", "peak RSS MiB", "RSS before query MiB", "speed vs DuckDB"],
        [
            [
                f"Meterplane rollups ({args.db})",
                f"{meter['seconds']:.4f}",
                f"{meter['peak']:.0f}",
                f"{meter['rss_before']:.0f}",
                f"{speedup:.1f}x",
            ],
            [
                "DuckDB over raw Parquet",
                f"{duck['seconds']:.4f}",
                f"{duck['peak']:.0f}",
                f"{duck['rss_before']:.0f}",
                "1.0x",
            ],
        ],
    )
    print(
        f"load: {loaded:,} samples in {load_seconds:.1f} s ({loaded / load_seconds:,.0f}/s, "
        f"{args.load}); totals identical: {same}"
    )
    if not same:
        raise SystemExit("Meterplane and DuckDB disagree")
    return {
        "db": args.db,
        "samples": samples,
        "load_rate": loaded / load_seconds,
        "meterplane_seconds": meter["seconds"],
        "meterplane_peak": meter["peak"],
        "duckdb_seconds": duck["seconds"],
        "duckdb_peak": duck["peak"],
        "speedup": speedup,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
