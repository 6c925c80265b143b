"""The billing and invoice commands, run as a person would, against the test databases."""

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.cli.test_cli import run_cli
from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.invoicing.helpers import AFTER_OCT, OCT, hourly_samples, ingest


def test_close_list_show_approve_pdf_and_void(
    database_url: str,
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    clock: Clock,
    tmp_path: Path,
) -> None:
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    clock.set(AFTER_OCT)
    ingest(client, tenant, hourly_samples("db-1", OCT, 744))
    provider = ["--provider", tenant.provider_id]

    closed = json.loads(
        run_cli(database_url, "billing", "close", "--period", "2026-10", *provider, "--json").stdout
    )
    assert (closed["created"], closed["frozen"]) == (1, 1)
    again = run_cli(database_url, "billing", "close", "--period", "2026-10", *provider).stdout
    assert "already closed" in again

    [row] = json.loads(run_cli(database_url, "invoices", "list", *provider, "--json").stdout)
    assert (row["status"], row["total"]) == ("pending_approval", "81.84")
    shown = run_cli(database_url, "invoices", "show", row["id"], *provider).stdout
    assert "cpu_cores" in shown and "1488" in shown and "total 81.84 USD" in shown

    approved = run_cli(database_url, "invoices", "approve", row["id"], *provider).stdout
    assert "issued as INV-2026-000001" in approved
    pdf = tmp_path / "invoice.pdf"
    run_cli(database_url, "invoices", "pdf", row["id"], *provider, "--out", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF-")

    refused = run_cli(database_url, "invoices", "approve", row["id"], *provider, ok=False)
    assert refused.returncode != 0
    assert "illegal_transition" in refused.stderr.strip().splitlines()[-1]
    run_cli(database_url, "invoices", "void", row["id"], *provider, "--reason", "test")
    [row] = json.loads(run_cli(database_url, "invoices", "list", *provider, "--json").stdout)
    assert row["status"] == "void"


def test_billing_commands_need_a_provider(database_url: str, client: TestClient) -> None:
    result = run_cli(database_url, "invoices", "list", ok=False)
    assert result.returncode != 0
    assert "METERPLANE_PROVIDER_ID" in result.stderr
    bad = run_cli(
        database_url, "billing", "close", "--period", "2026-13", "--provider", "p", ok=False
    )
    assert "invalid_period" in bad.stderr
