"""Portal access without a browser: one-time links, their reuse and expiry, magic links by email."""

from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.notifications.models import OutboxMessage
from meterplane.notifications.smtp import SMTPTransport
from meterplane.notifications.worker import deliver_due
from meterplane.portal import service
from meterplane.portal.models import PortalToken, TokenKind
from meterplane.settings import Settings
from tests.conftest import Catalogue, Clock, Tenant, build_catalogue
from tests.notifications.conftest import SMTPServer


def mint(client: TestClient, tenant: Tenant, customer_id: str) -> dict[str, str]:
    response = client.post(f"/v1/customers/{customer_id}/portal-sessions", headers=tenant.admin)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def test_a_minted_link_is_stored_hashed_and_expires_in_an_hour(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    factory: sessionmaker[Session],
    clock: Clock,
) -> None:
    body = mint(client, tenant, catalogue.customer_id)
    prefix = f"http://127.0.0.1:8000/portal/{tenant.provider_id}/enter/"
    assert body["url"].startswith(prefix)
    token = body["url"].removeprefix(prefix)
    assert len(token) >= 40
    assert body["expires_at"].startswith("2026-10-20T13:00:00")
    with factory() as session:
        [row] = session.scalars(select(PortalToken)).all()
        assert row.token_hash == service.hash_token(token) and token not in row.token_hash
        assert (row.customer_id, row.kind, row.used_at) == (catalogue.customer_id, "link", None)


def test_links_only_for_the_callers_own_customers(
    client: TestClient, tenant: Tenant, make_tenant: object, catalogue: Catalogue
) -> None:
    other = make_tenant("Other Cloud")  # type: ignore[operator]
    response = client.post(
        f"/v1/customers/{catalogue.customer_id}/portal-sessions", headers=other.admin
    )
    assert response.status_code == 404
    assert client.post("/v1/customers/cus_nope/portal-sessions", headers=tenant.admin).status_code
    assert (
        client.post(
            f"/v1/customers/{catalogue.customer_id}/portal-sessions", headers=tenant.ingest
        ).status_code
        == 403
    )


def test_a_token_works_once_and_not_after_its_hour(
    tenant: Tenant, catalogue: Catalogue, factory: sessionmaker[Session], clock: Clock
) -> None:
    now = clock()
    with factory() as session, session.begin():
        first = service.mint_token(
            session, tenant.provider_id, catalogue.customer_id, kind=TokenKind.link, now=now
        )
        late = service.mint_token(
            session, tenant.provider_id, catalogue.customer_id, kind=TokenKind.link, now=now
        )
    with factory() as session, session.begin():
        row = service.redeem(session, tenant.provider_id, first.token, kind=TokenKind.link, now=now)
        assert row.customer_id == catalogue.customer_id and row.used_at == now
    for token, moment, reason in [
        (first.token, now, "already used"),
        (late.token, now + timedelta(hours=1), "expired"),
        ("not-a-token", now, "not valid"),
    ]:
        with factory() as session, session.begin():
            try:
                service.redeem(session, tenant.provider_id, token, kind=TokenKind.link, now=moment)
            except service.LinkRefused as refused:
                assert refused.reason == reason
            else:
                raise AssertionError(f"{token} was accepted")
    # A link of one kind is not accepted as the other, nor under another provider's portal.
    with factory() as session, session.begin():
        fresh = service.mint_token(
            session, tenant.provider_id, catalogue.customer_id, kind=TokenKind.link, now=now
        )
    with factory() as session, session.begin():
        for provider, kind in [
            (tenant.provider_id, TokenKind.email),
            ("prov_other", TokenKind.link),
        ]:
            try:
                service.redeem(session, provider, fresh.token, kind=kind, now=now)
            except service.LinkRefused:
                pass
            else:
                raise AssertionError("accepted under the wrong kind or provider")


def test_magic_link_is_emailed_once_per_request_to_known_addresses_only(
    client: TestClient,
    tenant: Tenant,
    make_tenant: object,
    catalogue: Catalogue,
    factory: sessionmaker[Session],
    clock: Clock,
    database_url: str,
) -> None:
    other = make_tenant("Other Cloud")  # type: ignore[operator]
    build_catalogue(client, other, suffix=" Elsewhere")  # same email, another provider
    response = client.patch(
        f"/v1/customers/{catalogue.customer_id}/billing-emails",
        json={"emails": ["ap@globex.example"]},
        headers=tenant.admin,
    )
    assert response.status_code == 200, response.text
    base = "https://billing.example.com"

    def ask(address: str) -> int:
        with factory() as session, session.begin():
            return service.request_magic_link(
                session, tenant.provider_id, address, base_url=base, now=clock()
            )

    assert ask("nobody@globex.example") == 0
    assert ask("not an email") == 0
    assert ask("BILLING@globex.example") == 1
    assert ask("billing@globex.example") == 0  # throttled: one a minute
    assert ask("ap@globex.example") == 1
    clock.set(clock() + timedelta(minutes=2))
    assert ask("billing@globex.example") == 1
    with factory() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.event == "portal.magic_link")
            .order_by(OutboxMessage.id)
        ).all()
        assert [r.recipient for r in rows] == [
            "BILLING@globex.example",
            "ap@globex.example",
            "billing@globex.example",
        ]
        assert {r.provider_id for r in rows} == {tenant.provider_id}
        assert len({r.subject_id for r in rows}) == 3  # one token each
        url = rows[0].payload["data"]["url"]
        assert url.startswith(f"{base}/portal/{tenant.provider_id}/magic/")

    smtp = SMTPServer()
    smtp.start()
    try:
        settings = Settings(
            database_url=database_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            portal_base_url=base,
        )
        with httpx.Client() as http:
            counts = deliver_due(
                factory,
                now=clock(),
                transport=SMTPTransport("127.0.0.1", smtp.port, security="none"),
                http_client=http,
                settings=settings,
            )
        assert counts.sent == 3
        message = smtp.messages[0]
        assert message["To"] == "BILLING@globex.example"
        assert message["Subject"] == "Your sign-in link for the Acme Cloud billing portal"
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert url in text and url in html and "expires in 60 minutes" in text
    finally:
        smtp.stop()


def test_drafts_and_invoices_awaiting_review_stay_hidden(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, clock: Clock
) -> None:
    from datetime import UTC, datetime

    from tests.conftest import register_instance
    from tests.invoicing.helpers import OCT, close, hourly_samples, ingest, invoices

    clock.set(datetime(2026, 9, 30, tzinfo=UTC))
    register_instance(client, tenant, catalogue.subscription_id, "db-1")
    clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    ingest(client, tenant, hourly_samples("db-1", OCT, 24))
    close(client, tenant)
    [draft] = invoices(client, tenant)
    assert draft["status"] in ("draft", "pending_approval")
    url = mint(client, tenant, catalogue.customer_id)["url"]
    entered = client.get(url.removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert entered.status_code == 303
    root = f"/portal/{tenant.provider_id}"
    assert client.get(f"{root}/invoices/{draft['id']}").status_code == 404
    assert client.get(f"{root}/invoices/{draft['id']}/pdf").status_code == 404
    listing = client.get(f"{root}/invoices")
    assert listing.status_code == 200 and draft["id"] not in listing.text
    assert "No invoices yet" in listing.text
