"""Provider console pages with a year of hourly usage for 50 instances: p95 server time.

One provider with 10 customers owning 5 instances each (50 instances), each instance with a
year of hourly usage written straight into the hourly rollup (setup, not measured), and a
year of invoices (with lines and a per-instance breakdown). An owner signs in through the
login form, then every page is requested ~50 times in-process and timed: Starlette's
TestClient drives the whole ASGI app (routing, session cookie, CSRF, database, templates)
with no network, so the time is the server's. The PDF download is left out (WeasyPrint
rendering, ~0.2 s, not a page). Runs on SQLite and PostgreSQL.

    .venv/bin/python bench/web_bench.py [--db sqlite|postgresql|both] [--requests 50]
"""

from __future__ import annotations

import re
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
from meterplane.invoicing.models import Invoice, InvoiceInstanceLine, InvoiceLine
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import create_db_engine, make_session_factory, transaction
from meterplane.kit.ids import new_id
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.metering.models import HourlyUsage
from meterplane.settings import Settings
from meterplane.tenancy.service import create_provider
from meterplane.users.models import Role
from meterplane.users.service import create_user

NOW = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)
CUSTOMERS = 10
PER_CUSTOMER = 5
INSTANCES = CUSTOMERS * PER_CUSTOMER
HOURS = 365 * 24
EMAIL, PASSWORD = "owner@bench.example", "bench password 1"
PRICES = {"cpu_cores": Decimal("0.04"), "memory_gib": Decimal("0.005")}


def populate(url: str) -> str:
    """Provider, 10 customers × 5 instances, a year of hourly usage, 12 invoices each."""
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    start = NOW.replace(minute=0) - timedelta(hours=HOURS)
    created = start - timedelta(days=1)
    customers: list[str] = []
    with transaction(factory) as session:
        provider = create_provider(session, "Console Bench", now=created)
        service = create_service(session, provider.id, "Postgres", now=created)
        plan = create_plan(
            session,
            provider.id,
            service_id=service.id,
            name="Standard",
            currency="USD",
            prices={**PRICES, "storage_gib": Decimal("0.0002")},
            now=created,
        )
        for c in range(CUSTOMERS):
            customer = create_customer(
                session,
                provider.id,
                name=f"Customer {c:02d}",
                email=f"billing{c}@example.com",
                external_billing_id=f"C-{c}",
                now=created,
            )
            customers.append(customer.id)
            subscription = create_subscription(
                session, provider.id, customer_id=customer.id, plan_id=plan.id, now=created
            )
            for n in range(PER_CUSTOMER):
                register_instance(
                    session,
                    provider.id,
                    instance_id=f"db-{c:02d}-{n}",
                    subscription_id=subscription.id,
                    cloud="aws",
                    region="eu-west-1",
                    external_billing_id=None,
                    now=created,
                )
        create_user(
            session,
            provider.id,
            email=EMAIL,
            password=PASSWORD,
            role=Role.owner,
            actor="bench",
            now=created,
        )
        provider_id, plan_id = provider.id, plan.id
    with transaction(factory) as session:
        instances = list(
            session.execute(
                select(Instance.pk, Instance.id, Instance.customer_id).where(
                    Instance.provider_id == provider_id
                )
            )
        )
    for pk, _, _ in instances:
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
        for customer_id in customers:
            owned = [i for i in instances if i[2] == customer_id]
            for month in range(1, 13):
                year, first = 2025 + (10 + month) // 12, (10 + month) % 12 + 1
                period_start = datetime(year, first, 1, tzinfo=UTC)
                period_end = datetime(
                    2025 + (11 + month) // 12, (11 + month) % 12 + 1, 1, tzinfo=UTC
                )
                invoice_id = new_id("inv")
                session.add(
                    Invoice(
                        id=invoice_id,
                        provider_id=provider_id,
                        customer_id=customer_id,
                        period=period_start.strftime("%Y-%m"),
                        period_start=period_start,
                        period_end=period_end,
                        status=InvoiceStatus.paid if month < 12 else InvoiceStatus.pending_approval,
                        currency="USD",
                        subtotal=Decimal("1234.56"),
                        tax_amount=Decimal(0),
                        total=Decimal("1234.56"),
                        number=f"INV-{customer_id[-4:]}-{month:04d}" if month < 12 else None,
                        created_at=period_end,
                        computed_at=period_end,
                        issued_at=period_end + timedelta(days=1) if month < 12 else None,
                        due_at=period_end + timedelta(days=31) if month < 12 else None,
                    )
                )
                session.flush()
                for position, (key, price) in enumerate(PRICES.items()):
                    session.add(
                        InvoiceLine(
                            invoice_id=invoice_id,
                            provider_id=provider_id,
                            position=position,
                            kind="usage",
                            usage_period=period_start.strftime("%Y-%m"),
                            plan_id=plan_id,
                            plan_name="Standard",
                            dimension=key,
                            unit="core" if key == "cpu_cores" else "GiB",
                            quantity=Decimal(10_000),
                            unit_price=price,
                            amount=price * 10_000,
                        )
                    )
                    for index, (_, instance_id, _) in enumerate(owned):
                        session.add(
                            InvoiceInstanceLine(
                                invoice_id=invoice_id,
                                provider_id=provider_id,
                                position=position * PER_CUSTOMER + index,
                                instance_id=instance_id,
                                external_billing_id=None,
                                cloud="aws",
                                region="eu-west-1",
                                plan_id=plan_id,
                                dimension=key,
                                quantity=Decimal(2_000),
                                unit_price=price,
                                amount=price * 2_000,
                            )
                        )
    engine.dispose()
    return provider_id


def sign_in(client: TestClient) -> None:
    page = client.get("/console/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def run(backend: str, requests: int) -> list[dict[str, object]]:
    with temporary_database(backend) as url:
        provider_id = populate(url)
        engine = create_db_engine(url)
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        factory = make_session_factory(engine)
        app = create_app(Settings(database_url=url), session_factory=factory, clock=lambda: NOW)
        with transaction(factory) as session:
            invoice_id = session.scalar(
                select(Invoice.id).where(Invoice.provider_id == provider_id).limit(1)
            )
            customer_id = session.scalar(
                select(Invoice.customer_id).where(Invoice.provider_id == provider_id).limit(1)
            )
        pages = {
            "dashboard (month to date, 50 instances)": "/console",
            "invoices (all)": "/console/invoices",
            "invoices (pending approval)": "/console/invoices?status=pending_approval",
            "invoice detail": f"/console/invoices/{invoice_id}",
            "customers": "/console/customers",
            "customer (5 instances, estimate)": f"/console/customers/{customer_id}",
            "instance, 7 days hourly": "/console/instances/db-00-0?range=7d",
            "instance, 90 days daily": "/console/instances/db-00-0?range=90d",
            "pricing": "/console/pricing",
            "rejections": "/console/rejections",
            "users & API keys": "/console/access",
            "business profile": "/console/profile",
        }
        with TestClient(app) as client:
            sign_in(client)
            results = time_pages(client, pages, requests=requests, backend=backend)
        engine.dispose()
    return results


def main(argv: list[str]) -> list[dict[str, object]]:
    return page_bench_main(
        argv,
        __doc__.split("\n\n")[0],
        run,
        lambda requests: (
            f"Console pages: {CUSTOMERS} customers, {INSTANCES} instances, a year of hourly "
            f"usage ({INSTANCES * HOURS:,} hourly rows), {CUSTOMERS * 12} invoices; "
            f"{requests} requests per page, timed in-process (TestClient, no network)"
        ),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
