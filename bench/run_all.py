"""``make bench``: ingest throughput on both databases, then month totals, then a summary.

By default the month, close and export benchmarks use 7 days of usage (the month benchmark:
1,000 instances, about 4M samples; the close: 1,000 and 5,000 customers) so that everything
finishes in about fifteen minutes on two cores; ``--full`` runs the whole month (about 17M
samples; close of 10,000 customers too).

    .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --full
"""

from __future__ import annotations

import argparse
import sys
import time

import close_bench
import export_bench
import ingest_bench
import month_bench
import portal_bench
import web_bench
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
    close_sizes = "1000,5000,10000" if args.full else "1000,5000"
    closes = close_bench.main(["--sizes", close_sizes, "--days", days, "--pdf-sample", "50"])
    exported = export_bench.main(["--instances", "1000", "--days", days])
    web_bench.main([])
    portal_bench.main([])

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
    base_per_invoice = (closes[0]["close"] + closes[0]["approve"]) / closes[0]["customers"]
    for close in closes:
        per_invoice = (close["close"] + close["approve"]) / close["customers"]
        rows.append(
            [
                f"close + approve {int(close['customers']):,} customers (PostgreSQL)",
                f"{close['close'] + close['approve']:.1f} s, "
                f"{close['customers'] / (close['close'] + close['approve']):,.0f} invoices/s",
                f"{per_invoice / base_per_invoice:.2f}x the smallest size per invoice; "
                f"PDF {close['pdf_per_invoice'] * 1000:.0f} ms each",
                "linear growth",
            ]
        )
    rows.append(
        [
            f"export a month, 1,000 instances ({days} days, CSV, local dir)",
            f"{exported['rate']:,.0f} records/s",
            f"{exported['records']:,.0f} records in {exported['seconds']:.1f} s",
            "",
        ]
    )
    print_table(["measure", "value", "compared", "goal"], rows)


if __name__ == "__main__":
    main(sys.argv[1:])
