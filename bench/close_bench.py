"""Monthly close and approval for 1,000 / 5,000 / 10,000 customers on PostgreSQL.

Per size: a fresh database; customers with 1–3 instances each and a month of hourly usage
written straight into the hourly rollup with COPY (setup, not measured); then the measured
part: ``close_period`` (rating every customer, one invoice each) and approving every invoice
one transaction at a time (gapless number, due date, notifications outbox), as the worker
and the console do. PDF rendering is measured on a sample and reported per invoice.
The cost should grow linearly: seconds per invoice should stay flat across sizes.

    .venv/bin/python bench/close_bench.py                  # 1000,5000,10000 × 30 days
    .venv/bin/python bench/close_bench.py --sizes 1000 --days 7 --pdf-sample 50
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from benchlib import print_table, temporary_database
from meterplane.catalog.service import create_plan, create_service
from meterplane.invoicing import close as closing
from meterplane.invoicing import service as invoices
from meterplane.invoicing.models import Invoice
from meterplane.kit.db import create_db_engine, make_session_factory, transaction
from meterplane.kit.ids import new_id
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.tenancy.service import create_provider

PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 3, tzinfo=UTC)


def _populate(url: str, customers: int, days: int, seed: int) -> tuple[str, int, int]:
    """Provider, plan, customers, subscriptions, instances and hourly usage."""
    rng = random.Random(seed)
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    created = START - timedelta(days=1)
    with transaction(factory) as session:
        provider = create_provider(session, "Close Bench", now=created)
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
        provider_id, plan_id = provider.id, plan.id
    raw = engine.raw_connection()
    instance_rows = 0
    hourly_rows = 0
    try:
        cursor = raw.cursor()
        with cursor.copy(
            "COPY customers (id, provider_id, name, email, created_at) FROM STDIN"
        ) as copy:
            customer_ids = [new_id("cus") for _ in range(customers)]
            for index, cid in enumerate(customer_ids):
                copy.write_row(
                    (cid, provider_id, f"Customer {index}", f"billing{index}@example.com", created)
                )
        sub_ids = [new_id("sub") for _ in customer_ids]
        with cursor.copy(
            "COPY subscriptions (id, provider_id, customer_id, plan_id, status, "
            "created_at) FROM STDIN"
        ) as copy:
            for sid, cid in zip(sub_ids, customer_ids, strict=True):
                copy.write_row((sid, provider_id, cid, plan_id, "active", created))
        with cursor.copy(
            "COPY instances (provider_id, id, subscription_id, customer_id, "
            "plan_id, cloud, region, status, created_at) FROM STDIN"
        ) as copy:
            for index, (sid, cid) in enumerate(zip(sub_ids, customer_ids, strict=True)):
                for n in range(rng.randint(1, 3)):
                    copy.write_row(
                        (
                            provider_id,
                            f"i-{index}-{n}",
                            sid,
                            cid,
                            plan_id,
                            "aws",
                            "eu-west-1",
                            "running",
                            created,
                        )
                    )
                    instance_rows += 1
        cursor.execute(
            "INSERT INTO instance_plan_periods (provider_id, instance_pk, plan_id, "
            "effective_from, created_at) SELECT provider_id, pk, plan_id, "
            "'1970-01-01T00:00:00Z', created_at FROM instances"
        )
        cursor.execute("SELECT pk FROM instances ORDER BY pk")
        pks = [row[0] for row in cursor.fetchall()]
        with cursor.copy(
            "COPY usage_hourly (instance_pk, hour_start, provider_id, cpu_cores, "
            "memory_gib, storage_gib, replicas) FROM STDIN"
        ) as copy:
            for pk in pks:
                nodes = rng.randint(1, 3)
                cpu = rng.choice((2, 4, 8)) * nodes * QUANTITY_SCALE
                memory = cpu * 4
                storage = rng.randint(20, 500) * QUANTITY_SCALE
                for hour in range(days * 24):
                    copy.write_row(
                        (
                            pk,
                            START + timedelta(hours=hour),
                            provider_id,
                            cpu,
                            memory,
                            storage + hour * QUANTITY_SCALE,
                            nodes * QUANTITY_SCALE,
                        )
                    )
                    hourly_rows += 1
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return provider_id, instance_rows, hourly_rows


def run_size(customers: int, days: int, pdf_sample: int) -> dict[str, float]:
    with temporary_database("postgresql") as url:
        started = time.perf_counter()
        provider_id, instance_count, hourly_rows = _populate(url, customers, days, customers)
        setup = time.perf_counter() - started
        engine = create_db_engine(url)
        factory = make_session_factory(engine)

        started = time.perf_counter()
        report = closing.close_period(factory, provider_id, PERIOD, now=NOW)
        close_seconds = time.perf_counter() - started
        assert report.created == customers, report

        with transaction(factory) as session:
            ids = list(
                session.scalars(select(Invoice.id).where(Invoice.provider_id == provider_id))
            )
        started = time.perf_counter()
        for invoice_id in ids:
            with transaction(factory) as session:
                invoices.approve(session, provider_id, invoice_id, actor="bench", now=NOW)
        approve_seconds = time.perf_counter() - started

        pdf_per_invoice = float("nan")
        if pdf_sample:
            from meterplane.invoicing.pdf import render_invoice_pdf

            sample = ids[:pdf_sample]
            started = time.perf_counter()
            for invoice_id in sample:
                with transaction(factory) as session:
                    render_invoice_pdf(session, provider_id, invoice_id)
            pdf_per_invoice = (time.perf_counter() - started) / len(sample)
        engine.dispose()
    return {
        "customers": customers,
        "instances": instance_count,
        "hourly_rows": hourly_rows,
        "setup": setup,
        "close": close_seconds,
        "approve": approve_seconds,
        "pdf_per_invoice": pdf_per_invoice,
    }


def main(argv: list[str]) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--pdf-sample",
        type=int,
        default=100,
        help="invoices rendered to PDF per size to time rendering (0: skip)",
    )
    args = parser.parse_args(argv)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = run_size(size, args.days, args.pdf_sample)
        results.append(result)
        print(
            f"{size:>6} customers: close {result['close']:.1f} s, approve "
            f"{result['approve']:.1f} s (setup {result['setup']:.0f} s, "
            f"{result['hourly_rows']:,} hourly rows)",
            flush=True,
        )
    base = results[0]
    base_per_invoice = (base["close"] + base["approve"]) / base["customers"]
    rows = []
    for r in results:
        total = r["close"] + r["approve"]
        per_invoice = total / r["customers"]
        with_pdf = total + r["pdf_per_invoice"] * r["customers"]
        rows.append(
            [
                f"{int(r['customers']):,}",
                f"{int(r['instances']):,}",
                f"{r['close']:.1f} s ({r['customers'] / r['close']:,.0f}/s)",
                f"{r['approve']:.1f} s ({r['customers'] / r['approve']:,.0f}/s)",
                f"{total:.1f} s ({r['customers'] / total:,.0f}/s)",
                f"{per_invoice * 1000:.2f} ms ({per_invoice / base_per_invoice:.2f}x)",
                f"{with_pdf:.0f} s ({r['customers'] / with_pdf:,.1f}/s)",
            ]
        )
    print()
    print(
        f"Close + approve of {PERIOD}, {args.days} days of hourly usage, PostgreSQL; "
        f"PDF time per invoice measured on {args.pdf_sample} invoices"
    )
    print_table(
        [
            "customers",
            "instances",
            "close",
            "approve",
            "close+approve",
            "per invoice (vs smallest)",
            "with PDFs",
        ],
        rows,
    )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
