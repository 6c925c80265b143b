"""A real SMTP server (aiosmtpd) and a webhook receiver on 127.0.0.1, started by the tests."""

import email
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.notifications.smtp import SMTPTransport
from meterplane.notifications.worker import DeliveryCounts, deliver_due
from meterplane.settings import Settings
from meterplane.tenancy.models import Provider
from tests.conftest import Catalogue, Clock, Tenant, register_instance
from tests.invoicing.helpers import AFTER_OCT, OCT, close, hourly_samples, ingest, invoices


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Recorder:
    """aiosmtpd handler: keeps every accepted message; refuses some recipients with 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = Recorder()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Receiver:
    """A webhook endpoint: records each request; answers ``status`` (a list pops per request)."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def mail_settings(database_url: str, smtp_server: SMTPServer) -> Settings:
    return Settings(
        database_url=database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_from_address="billing@meterplane.test",
        portal_base_url="https://billing.example.com",
    )


Deliver = Callable[..., DeliveryCounts]


@pytest.fixture
def deliver(
    factory: sessionmaker[Session], mail_settings: Settings, clock: Clock
) -> Iterator[Deliver]:
    """One delivery pass at the pinned clock, through real SMTP and HTTP."""
    with httpx.Client() as client:

        def _deliver(**overrides: Any) -> DeliveryCounts:
            settings = mail_settings
            transport = overrides.pop(
                "transport",
                SMTPTransport(settings.smtp_host or "", settings.smtp_port, security="none"),
            )
            return deliver_due(
                factory,
                now=clock(),
                transport=transport,
                http_client=client,
                settings=settings,
                **overrides,
            )

        yield _deliver


def set_support_email(factory: sessionmaker[Session], tenant: Tenant, address: str) -> None:
    with factory() as session, session.begin():
        session.get_one(Provider, tenant.provider_id).support_email = address


@pytest.fixture
def frozen(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    clock: Clock,
    factory: sessionmaker[Session],
) -> dict[str, Any]:
    """October closed: one invoice of $84.54 pending approval (see tests/invoicing)."""
    set_support_email(factory, tenant, "support@acme.example")
    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    register_instance(client, tenant, catalogue.subscription_id, "db-2")
    clock.set(AFTER_OCT)
    ingest(
        client,
        tenant,
        hourly_samples("db-1", OCT, 744, cpu=2, memory="4", storage="50")
        + hourly_samples("db-2", OCT, 100, cpu="0.5", memory="1", storage="10"),
    )
    close(client, tenant)
    [invoice] = invoices(client, tenant, period="2026-10")
    assert invoice["total"] == "84.54"
    return invoice


def approve(client: TestClient, tenant: Tenant, invoice_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/invoices/{invoice_id}/approve", json={}, headers=tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outbox(client: TestClient, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = client.get("/v1/outbox", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def body_text(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def as_json(body: bytes) -> Any:
    return json.loads(body)
