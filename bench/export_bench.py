"""Export a month of hourly usage for 1,000 instances to a local-directory target.

Hourly rows are bulk-inserted straight into ``usage_hourly`` (ingest has its own benchmark);
then one backfill run exports every hour of the month, and a second run measures the
scheduled revision check (one fingerprint scan over the month, nothing to rewrite).

    .venv/bin/python bench/export_bench.py [--instances 1000] [--days 30] [--format csv]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update

from benchlib import create_fleet, print_table, temporary_database
from meterplane.catalog.models import Service
from meterplane.export.runner import run_provider
from meterplane.export.schemas import TargetIn
from meterplane.export.service import configure_target
from meterplane.kit.db import create_db_engine, make_session_factory
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.metering.models import HourlyUsage
from meterplane.settings import Settings

START = datetime(2026, 9, 1, tzinfo=UTC)


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    hours = args.days * 24
    end = START + timedelta(hours=hours)
    now = end + timedelta(hours=1)
    out_dir = Path(tempfile.mkdtemp(prefix="meterplane_export_bench_"))
    try:
        with temporary_database(args.db) as url:
            engine = create_db_engine(url)
            fleet = create_fleet(
                engine,
                instances=args.instances,
                nodes=[1, 2, 3],
                instances_per_customer=[1, 2, 5],
                now=START,
                created=START - timedelta(days=1),
            )
            factory = make_session_factory(engine)
            started = time.perf_counter()
            with factory() as session, session.begin():
                session.execute(
                    update(Service)
                    .where(Service.provider_id == fleet.provider_id)
                    .values(integrations=["meterplaneMetering"])
                )
                for h in range(hours):
                    hour = START + timedelta(hours=h)
                    session.execute(
                        insert(HourlyUsage),
                        [
                            {
                                "instance_pk": pk,
                                "hour_start": hour,
                                "provider_id": fleet.provider_id,
                                "cpu_cores": (2 + i % 7) * QUANTITY_SCALE,
                                "memory_gib": (8 + i % 5) * QUANTITY_SCALE + 250_000_000,
                                "storage_gib": (100 + h % 3) * QUANTITY_SCALE,
                                "replicas": (1 + i % 3) * QUANTITY_SCALE,
                            }
                            for i, pk in enumerate(fleet.instance_pks)
                        ],
                    )
            load_seconds = time.perf_counter() - started
            settings = Settings(
                database_url=url,
                secret_key="bench",
                export_local_dir=out_dir,
                export_max_hours_per_run=hours + 24,
            )
            with factory() as session, session.begin():
                configure_target(
                    session,
                    fleet.provider_id,
                    TargetIn(kind="local", format=args.format, gzip=args.gzip, start_at=START),
                    settings=settings,
                    now=START,
                )
            started = time.perf_counter()
            report = run_provider(
                factory, fleet.provider_id, settings=settings, now=now, start=START, end=end
            )
            export_seconds = time.perf_counter() - started
            assert report.error_code is None, report.error_message
            started = time.perf_counter()
            again = run_provider(factory, fleet.provider_id, settings=settings, now=now)
            check_seconds = time.perf_counter() - started
            assert again.revisions == 0 and again.hours_exported == 0
            engine.dispose()
        size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    result = {
        "hours": float(report.hours_exported),
        "records": float(report.records),
        "seconds": export_seconds,
        "rate": report.records / export_seconds,
        "check_seconds": check_seconds,
        "load_seconds": load_seconds,
        "mib": size / 2**20,
    }
    label = f"{args.format}{'.gz' if args.gzip else ''}"
    print(f"export bench: {args.instances} instances x {hours} hours on {args.db}, {label}")
    print_table(
        ["measure", "value"],
        [
            [
                "hourly rows loaded (bulk insert)",
                f"{args.instances * hours:,} in {load_seconds:.1f} s",
            ],
            ["hours exported", f"{report.hours_exported:,} objects"],
            ["records exported", f"{report.records:,}"],
            ["export time", f"{export_seconds:.1f} s"],
            ["records/s", f"{result['rate']:,.0f}"],
            ["written", f"{result['mib']:.0f} MiB"],
            ["scheduled run, nothing due (revision check)", f"{check_seconds * 1000:.0f} ms"],
        ],
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
