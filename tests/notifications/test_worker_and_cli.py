"""The worker's pass (held mail without SMTP, drafts about to be auto-approved) and the CLI."""

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.notifications.smtp import SMTPTransport
from meterplane.worker import run_once
from tests.cli.test_cli import run_cli
from tests.conftest import Clock, Tenant
from tests.invoicing.helpers import AFTER_OCT
from tests.notifications.conftest import Receiver, SMTPServer, body_text, outbox


def test_without_smtp_emails_wait_and_webhooks_still_go(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    receiver: Receiver,
    factory: sessionmaker[Session],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("METERPLANE_SMTP_HOST", raising=False)
    client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["invoice.issued"]},
        headers=tenant.admin,
    )
    client.post(f"/v1/invoices/{frozen['id']}/approve", json={}, headers=tenant.admin)
    report = run_once(factory, now=clock())
    assert report.notifications == {"sent": 1, "retried": 0, "failed": 0, "held": 2}
    assert len(receiver.requests) == 1
    assert {r["status"] for r in outbox(client, tenant, channel="email")} == {"pending"}


def test_provider_is_told_a_day_before_auto_approval(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    factory: sessionmaker[Session],
) -> None:
    response = client.patch(
        "/v1/provider/billing-settings",
        json={"auto_approve_after_days": 3},
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text
    transport = SMTPTransport("127.0.0.1", smtp_server.port, security="none")
    with httpx.Client() as http:

        def run(at: Any) -> Any:
            return run_once(factory, now=at, transport=transport, http_client=http)

        run(AFTER_OCT + timedelta(days=1))  # too early: only "ready for review" goes out
        assert [m["Subject"] for m in smtp_server.messages] == [
            "1 draft invoice for October 2026 ready for review"
        ]
        run(AFTER_OCT + timedelta(days=2, hours=1))
        run(AFTER_OCT + timedelta(days=2, hours=2))  # once only
        soon = smtp_server.messages[1:]
        assert [m["Subject"] for m in soon] == [
            "1 invoice for October 2026 will be approved automatically on November 6, 2026"
        ]
        assert "$84.54" in body_text(soon[0])[0]
        report = run(AFTER_OCT + timedelta(days=3))
        assert report.approved == [frozen["id"]]
        assert smtp_server.messages[-1]["To"] == "billing@globex.example"


def test_outbox_and_webhooks_commands(
    database_url: str, client: TestClient, tenant: Tenant, frozen: dict[str, Any]
) -> None:
    provider = ["--provider", tenant.provider_id]
    added = run_cli(
        database_url,
        "webhooks",
        "add",
        "https://hooks.example.com/meterplane",
        "--events",
        "invoice.issued,invoice.paid",
        *provider,
        "--json",
    )
    endpoint = json.loads(added.stdout)
    assert endpoint["events"] == ["invoice.issued", "invoice.paid"]
    assert endpoint["secret"].startswith("whsec_")
    client.post(f"/v1/invoices/{frozen['id']}/approve", json={}, headers=tenant.admin)
    listed = json.loads(
        run_cli(database_url, "outbox", "list", "--status", "pending", *provider, "--json").stdout
    )
    assert {(r["event"], r["channel"]) for r in listed} >= {
        ("invoice.issued", "email"),
        ("invoice.issued", "webhook"),
    }
    table = run_cli(database_url, "outbox", "list", *provider).stdout
    assert "invoice.issued" in table
    retried = run_cli(database_url, "outbox", "retry", str(listed[0]["id"]), *provider)
    assert "queued again" in retried.stdout
    missing = run_cli(database_url, "outbox", "retry", "999999", *provider, ok=False)
    assert missing.returncode == 1 and "outbox_message_not_found" in missing.stderr
