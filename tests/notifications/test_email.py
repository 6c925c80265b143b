"""Invoice emails through a real SMTP server: content, PDF, outage, dedup, failing addresses."""

import subprocess
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.time import utc_now
from meterplane.notifications import outbox as outbox_module
from meterplane.notifications import worker as notification_worker
from meterplane.notifications.models import OutboxMessage
from meterplane.notifications.service import notify
from tests.conftest import Clock, Tenant
from tests.notifications.conftest import (
    Deliver,
    SMTPServer,
    approve,
    body_text,
    outbox,
)

PORTAL = "https://billing.example.com/portal/invoices/"


def test_issued_invoice_email_arrives_once_with_content_and_pdf(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
    tmp_path: Any,
) -> None:
    issued = approve(client, tenant, frozen["id"])
    number = issued["number"]
    # The provider's "drafts ready for review" mail was written by the close.
    counts = deliver()
    assert (counts.sent, counts.failed, counts.retried) == (2, 0, 0)
    assert deliver().sent == 0  # nothing left to send

    by_to = {m["To"]: m for m in smtp_server.messages}
    assert set(by_to) == {"billing@globex.example", "support@acme.example"}
    message = by_to["billing@globex.example"]
    assert parseaddr(message["From"]) == ("Acme Cloud", "billing@meterplane.test")
    assert message["Reply-To"] == "support@acme.example"
    assert message["Message-ID"].endswith("@meterplane.test>")
    assert number in message["Subject"] and "$84.54" in message["Subject"]
    plain, html = body_text(message)
    for text in (plain, html):
        assert number in text
        assert "$84.54" in text
        assert "December 3, 2026" in text  # approved Nov 3 + 30 days of payment terms
        assert PORTAL + frozen["id"] in text

    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{number}.pdf"
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert number in text and "84.54" in text

    review = by_to["support@acme.example"]
    assert "ready for review" in review["Subject"]
    review_text, _ = body_text(review)
    assert "1 invoice totalling $84.54" in review_text
    assert "/console/invoices?status=pending_approval&period=2026-10" in review_text

    rows = outbox(client, tenant, status="sent")
    assert {r["event"] for r in rows} == {"invoice.issued", "drafts.ready_for_review"}
    assert all(r["attempts"] == 1 for r in rows)


def test_outage_is_retried_with_backoff_then_delivered_exactly_once(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
    clock: Clock,
) -> None:
    smtp_server.stop()
    approve(client, tenant, frozen["id"])
    start = clock()

    counts = deliver()
    assert (counts.sent, counts.retried) == (0, 2)
    [row] = [r for r in outbox(client, tenant) if r["event"] == "invoice.issued"]
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "ConnectionRefusedError" in row["last_error"]
    assert row["next_attempt_at"].startswith((start + timedelta(minutes=1)).isoformat()[:19])

    # Not due yet: nothing is tried.
    clock.set(start + timedelta(seconds=30))
    assert deliver().retried == 0
    # Second failure: the wait doubles.
    clock.set(start + timedelta(minutes=1))
    assert deliver().retried == 2
    issued = next(r for r in outbox(client, tenant) if r["event"] == "invoice.issued")
    assert issued["attempts"] == 2
    assert issued["next_attempt_at"].startswith((start + timedelta(minutes=3)).isoformat()[:19])

    smtp_server.start()
    clock.set(start + timedelta(minutes=3))
    assert deliver().sent == 2
    clock.set(start + timedelta(hours=5))
    assert deliver().sent == 0
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "billing@globex.example",
        "support@acme.example",
    ]
    detail = client.get(f"/v1/outbox/{issued['id']}", headers=tenant.admin).json()
    assert [a["outcome"] for a in detail["log"]] == ["retry", "retry", "sent"]


def test_attempts_run_out_after_the_maximum(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
    clock: Clock,
) -> None:
    smtp_server.stop()
    approve(client, tenant, frozen["id"])
    for _ in range(outbox_module.MAX_ATTEMPTS):
        deliver()
        clock.set(clock() + outbox_module.MAX_DELAY)
    rows = outbox(client, tenant)
    assert {(r["status"], r["attempts"]) for r in rows} == {("failed", outbox_module.MAX_ATTEMPTS)}
    # The provider retries by hand once the server is back.
    smtp_server.start()
    issued = next(r for r in rows if r["event"] == "invoice.issued")
    response = client.post(f"/v1/outbox/{issued['id']}/retry", headers=tenant.admin)
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert deliver().sent == 1
    assert [m["To"] for m in smtp_server.messages] == ["billing@globex.example"]


def test_notify_twice_writes_one_row(
    factory: sessionmaker[Session], tenant: Tenant, frozen: dict[str, Any], client: TestClient
) -> None:
    approve(client, tenant, frozen["id"])
    for _ in range(2):
        with factory() as session, session.begin():
            notify(
                session,
                tenant.provider_id,
                "invoice.issued",
                subject_id=frozen["id"],
                data={"invoice_id": frozen["id"]},
                now=utc_now(),
            )
    with factory() as session:
        count = session.scalar(
            select(func.count()).where(
                OutboxMessage.event == "invoice.issued", OutboxMessage.subject_id == frozen["id"]
            )
        )
    assert count == 1


def test_a_crash_between_send_and_commit_resends_with_the_same_message_id(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented at-least-once window: the server accepted the message, the worker died
    before its commit. The lease runs out, the message goes again with the same Message-ID, so
    the receiving side can drop the copy. Nothing else is ever sent twice."""
    approve(client, tenant, frozen["id"])

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(notification_worker.outbox, "record_sent", crash)
    with pytest.raises(SystemExit):
        deliver()
    monkeypatch.undo()
    assert len(smtp_server.messages) == 1
    assert deliver().sent == 0  # leased: not due again before the lease runs out
    clock.set(clock() + outbox_module.LEASE)
    assert deliver().sent == 2
    first, *rest = smtp_server.messages
    again = [m for m in rest if m["To"] == first["To"]]
    assert len(again) == 1 and again[0]["Message-ID"] == first["Message-ID"]


def test_permanent_refusal_marks_the_address_and_stops(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
    clock: Clock,
    factory: sessionmaker[Session],
) -> None:
    smtp_server.handler.refuse.add("billing@globex.example")
    approve(client, tenant, frozen["id"])
    counts = deliver()
    assert (counts.sent, counts.failed) == (1, 1)
    [row] = outbox(client, tenant, status="failed")
    assert row["recipient"] == "billing@globex.example" and row["address_failing"] is True
    assert "550" in row["last_error"]
    failing = client.get("/v1/outbox/failing-addresses", headers=tenant.admin).json()["data"]
    assert [f["address"] for f in failing] == ["billing@globex.example"]
    clock.set(clock() + timedelta(days=1))
    assert deliver().retried == 0
    # A later message to that address is not even tried; a retry by the provider clears it.
    with factory() as session, session.begin():
        notify(
            session,
            tenant.provider_id,
            "invoice.past_due",
            subject_id=frozen["id"],
            data={},
            now=clock(),
        )
    assert deliver().failed == 1 and len(smtp_server.messages) == 1
    smtp_server.handler.refuse.clear()
    response = client.post(f"/v1/outbox/{row['id']}/retry", headers=tenant.admin)
    assert response.status_code == 200
    assert client.get("/v1/outbox/failing-addresses", headers=tenant.admin).json()["data"] == []
    assert deliver().sent == 1
    assert smtp_server.messages[-1]["To"] == "billing@globex.example"


def test_every_billing_email_gets_its_own_message(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
) -> None:
    customer_id = frozen["customer_id"]
    response = client.patch(
        f"/v1/customers/{customer_id}/billing-emails",
        json={
            "emails": ["ap@globex.example", "CFO@globex.example", "billing@globex.example"],
            "locale": "de_DE",
        },
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["all"] == [
        "billing@globex.example",
        "ap@globex.example",
        "CFO@globex.example",
    ]
    approve(client, tenant, frozen["id"])
    deliver()
    to_customer = [m for m in smtp_server.messages if m["To"] != "support@acme.example"]
    assert sorted(m["To"] for m in to_customer) == [
        "CFO@globex.example",
        "ap@globex.example",
        "billing@globex.example",
    ]
    assert len({m["Message-ID"] for m in to_customer}) == 3
    plain, _ = body_text(to_customer[0])
    assert "84,54\xa0$" in plain  # the customer's locale: de_DE
    assert "3. Dezember 2026" in plain

    bad = client.patch(
        f"/v1/customers/{customer_id}/billing-emails",
        json={"emails": ["not an address"]},
        headers=tenant.admin,
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_email")
