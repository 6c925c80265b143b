"""Customer portal pages with a year of hourly usage for 50 instances: p95 server time.

One provider, one customer owning 50 instances, each with a year of hourly usage written
straight into the hourly rollup (setup, not measured), and twelve issued invoices. The
customer signs in through a portal link, then every page is requested ~50 times in-process
(Starlette's TestClient: the whole app, no network) and timed; the PDF download is left out
(it is WeasyPrint rendering, ~0.2 s, not a page). Runs on SQLite and PostgreSQL.

    .venv/bin/python bench/portal_bench.py [--db sqlite|postgresql|both] [--requests 50]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from benchlib import page_bench_main, temporary_database, time_pages
from meterplane.api.app import create_app
from meterplane.catalog.service import create_plan, create_service
from meterplane.customers.models import Instance
from meterplane.customers.service import create_customer, create_subscription, register_instance
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import create_db_engine, make_session_factory, transaction
from meterplane.kit.ids import new_id
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.metering.models import HourlyUsage
from meterplane.portal.models import TokenKind
from meterplane.portal.service import link_url, mint_token
from meterplane.settings import Settings
from meterplane.tenancy.service import create_provider

NOW = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)
INSTANCES = 50
HOURS = 365 * 24


def populate(url: str) -> tuple[str, str]:
    """Provider, customer, 50 instances, a year of hourly usage, 12 invoices."""
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    start = NOW.replace(minute=0) - timedelta(hours=HOURS)
    created = start - timedelta(days=1)
    with transaction(factory) as session:
        provider = create_provider(session, "Portal Bench", now=created)
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
        customer = create_customer(
            session,
            provider.id,
            name="Globex",
            email="billing@globex.example",
            external_billing_id=None,
            now=created,
        )
        subscription = create_subscription(
            session, provider.id, customer_id=customer.id, plan_id=plan.id, now=created
        )
        for n in range(INSTANCES):
            register_instance(
                session,
                provider.id,
                instance_id=f"db-{n:02d}",
                subscription_id=subscription.id,
                cloud="aws",
                region="eu-west-1",
                external_billing_id=None,
                now=created,
            )
        provider_id, customer_id = provider.id, customer.id
    with transaction(factory) as session:
        pks = list(session.scalars(select(Instance.pk).where(Instance.provider_id == provider_id)))
    for pk in pks:
        cpu = (2 + pk % 3 * 2) * QUANTITY_SCALE
        rows = [
            {
                "instance_pk": pk,
                "hour_start": start + timedelta(hours=h),
                "provider_id": provider_id,
                "cpu_cores": cpu,
                "memory_gib": cpu * 4,
                "storage_gib": (100 + h // 24) * QUANTITY_SCALE,
                "replicas": 2 * QUANTITY_SCALE,
            }
            for h in range(HOURS)
        ]
        with transaction(factory) as session:
            session.execute(insert(HourlyUsage), rows)
    with transaction(factory) as session:
        for month in range(1, 13):
            period_start = datetime(2025 + (10 + month) // 12, (10 + month) % 12 + 1, 1, tzinfo=UTC)
            period_end = datetime(2025 + (11 + month) // 12, (11 + month) % 12 + 1, 1, tzinfo=UTC)
            session.add(
                Invoice(
                    id=new_id("inv"),
                    provider_id=provider_id,
                    customer_id=customer_id,
                    period=period_start.strftime("%Y-%m"),
                    period_start=period_start,
                    period_end=period_end,
                    status=InvoiceStatus.paid if month < 12 else InvoiceStatus.issued,
                    currency="USD",
                    subtotal=Decimal("1234.56"),
                    tax_amount=Decimal(0),
                    total=Decimal("1234.56"),
                    number=f"INV-{month:04d}",
                    created_at=period_end,
                    computed_at=period_end,
                    issued_at=period_end + timedelta(days=1),
                    due_at=period_end + timedelta(days=31),
                )
            )
    engine.dispose()
    return provider_id, customer_id


def run(backend: str, requests: int) -> list[dict[str, object]]:
    with temporary_database(backend) as url:
        provider_id, customer_id = populate(url)
        engine = create_db_engine(url)
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        factory = make_session_factory(engine)
        settings = Settings(database_url=url, portal_base_url="http://testserver")
        app = create_app(settings, session_factory=factory, clock=lambda: NOW)
        with transaction(factory) as session:
            minted = mint_token(session, provider_id, customer_id, kind=TokenKind.link, now=NOW)
            link = link_url("http://testserver", minted.row, minted.token)
            invoice_id = session.scalar(
                select(Invoice.id).where(Invoice.provider_id == provider_id).limit(1)
            )
        root = f"/portal/{provider_id}"
        pages = {
            "usage (home)": root,
            "usage.json 48h": f"{root}/usage.json?range=48h",
            "usage.json month": f"{root}/usage.json?range=month",
            "invoices": f"{root}/invoices",
            "invoice": f"{root}/invoices/{invoice_id}",
            "payment method": f"{root}/payment-method",
        }
        with TestClient(app) as client:
            entered = client.get(link.removeprefix("http://testserver"), follow_redirects=False)
            assert entered.status_code == 303, entered.text
            results = time_pages(client, pages, requests=requests, backend=backend)
        engine.dispose()
    return results


def main(argv: list[str]) -> list[dict[str, object]]:
    return page_bench_main(
        argv,
        __doc__.split("\n\n")[0],
        run,
        lambda requests: (
            f"Portal pages: 1 customer, {INSTANCES} instances, a year of hourly usage "
            f"({INSTANCES * HOURS:,} hourly rows); {requests} requests per page"
        ),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
