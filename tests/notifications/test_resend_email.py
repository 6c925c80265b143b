"""A resent invoice arrives again, with its PDF, and fires no second webhook event."""

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.notifications.conftest import Deliver, SMTPServer, approve, outbox


def test_resent_invoice_arrives_again_with_its_pdf(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    smtp_server: SMTPServer,
    deliver: Deliver,
) -> None:
    number = approve(client, tenant, frozen["id"])["number"]
    deliver()
    smtp_server.messages.clear()
    response = client.post(f"/v1/invoices/{frozen['id']}/resend", headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert deliver().sent == 1
    [message] = smtp_server.messages
    assert message["To"] == "billing@globex.example"
    assert number in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content().startswith(b"%PDF-")
    events = [row["event"] for row in outbox(client, tenant)]
    assert events.count("invoice.resent") == 1
