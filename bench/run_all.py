"""``make bench``: ingest throughput on both databases, then month totals, then a summary.

By default the month benchmark runs on 1,000 instances over 7 days (about 4M samples) so
that everything finishes in about ten minutes on two cores; ``--full`` runs the full month
(about 17M samples; loading takes a while).

    .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --full
"""

from __future__ import annotations

import argparse
import sys
import time

import ingest_bench
import month_bench
from benchlib import print_table


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the whole month, 1,000 instances")
    parser.add_argument("--batches", type=int, default=20, help="timed ingest batches")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    ingest = ingest_bench.main(["--db", "both", "--batches", str(args.batches)])
    days = "30" if args.full else "7"
    months = [
        month_bench.main(["--db", db, "--instances", "1000", "--days", days])
        for db in ("sqlite", "postgresql")
    ]

    print()
    print(f"Summary ({time.perf_counter() - started:.0f} s)")
    rows = [
        [
            f"ingest: {row['name']}",
            f"{row['rate']:,.0f} samples/s",
            f"{row['ratio']:.0%} of bare parse",
            "goal >= 50% and >= 20,000/s",
        ]
        for row in ingest
    ]
    for month in months:
        rows.append(
            [
                f"month totals: Meterplane on {month['db']} ({month['samples']:,} samples)",
                f"{month['meterplane_seconds'] * 1000:.1f} ms, "
                f"peak {month['meterplane_peak']:.0f} MiB",
                f"{month['speedup']:.1f}x DuckDB "
                f"({month['duckdb_seconds'] * 1000:.0f} ms, {month['duckdb_peak']:.0f} MiB)",
                "goal >= 10x, < 1 GiB",
            ]
        )
        rows.append(
            [
                f"month load via ingest_samples ({month['db']})",
                f"{month['load_rate']:,.0f} samples/s",
                "in-process, no HTTP",
                "",
            ]
        )
    print_table(["measure", "value", "compared", "goal"], rows)


if __name__ == "__main__":
    main(sys.argv[1:])
