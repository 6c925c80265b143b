"""Connect onboarding: signed, expiring state; code exchange; disconnect and deauthorization."""

from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Clock, Tenant, build_catalogue
from tests.payments.conftest import (
    CLIENT_ID,
    StripeGateway,
    connect_account,
    post_event,
    run,
)
from tests.payments.stripe_front import StripeFront


def test_connect_stores_the_account_and_the_console_says_why_it_cannot_charge(
    client: TestClient, tenant: Tenant, front: StripeFront
) -> None:
    before = client.get("/v1/provider/stripe/connect", headers=tenant.admin).json()
    assert before["connected"] is False and before["can_charge"] is False
    assert "connect" in before["reason"].lower()
    catalogue = build_catalogue(client, tenant)
    refused = client.post(
        f"/v1/customers/{catalogue.customer_id}/setup-intents", headers=tenant.admin
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "stripe_not_connected")

    account = connect_account(client, tenant, front)
    after = client.get("/v1/provider/stripe/connect", headers=tenant.admin).json()
    assert (after["connected"], after["stripe_account_id"], after["can_charge"]) == (
        True,
        account,
        True,
    )


def test_bad_expired_or_reused_state_and_codes_are_refused(
    client: TestClient, tenant: Tenant, front: StripeFront, clock: Clock
) -> None:
    url = httpx.URL(client.post("/v1/provider/stripe/connect", headers=tenant.admin).json()["url"])
    state = url.params["state"]
    body, _, mac = state.partition(".")
    for bad in (f"{body}.{'A' * len(mac)}", "garbage", f"{body}x.{mac}"):
        response = client.get(
            "/v1/stripe/connect/callback", params={"code": front.approve(), "state": bad}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_state")
    clock.set(clock() + timedelta(hours=1))
    expired = client.get(
        "/v1/stripe/connect/callback", params={"code": front.approve(), "state": state}
    )
    assert (expired.status_code, expired.json()["error"]["code"]) == (422, "expired_state")
    clock.set(clock() - timedelta(hours=1))
    code = front.approve()
    ok = client.get("/v1/stripe/connect/callback", params={"code": code, "state": state})
    assert ok.status_code == 200
    reused = client.get("/v1/stripe/connect/callback", params={"code": code, "state": state})
    assert reused.status_code == 502 and reused.json()["error"]["code"] == "stripe_request_failed"
    denied = client.get(
        "/v1/stripe/connect/callback", params={"state": state, "error": "access_denied"}
    )
    assert denied.json()["error"]["code"] == "stripe_connect_refused"


def test_disconnect_and_deauthorized_webhook(
    client: TestClient,
    tenant: Tenant,
    make_tenant: object,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    account = connect_account(client, tenant, front)
    response = client.delete("/v1/provider/stripe/connect", headers=tenant.admin)
    assert response.status_code == 200 and response.json()["can_charge"] is False
    assert front.deauthorized[-1] == account

    other = make_tenant("Initech")  # type: ignore[operator]
    other_account = connect_account(client, other, front)
    event = {
        "id": "evt_deauth_1",
        "type": "account.application.deauthorized",
        "account": other_account,
        "created": 1,
        "data": {"object": {"id": CLIENT_ID}},
    }
    assert post_event(client, event).json() == {"received": True, "duplicate": False}
    assert post_event(client, event).json() == {"received": True, "duplicate": True}
    run(factory, gateway, clock)
    status = client.get("/v1/provider/stripe/connect", headers=other.admin).json()
    assert status["connected"] is False
    assert "deauthorized" in status["reason"]


def test_a_browser_returning_from_stripe_lands_in_the_console(
    client: TestClient, tenant: Tenant, front: StripeFront
) -> None:
    url = httpx.URL(client.post("/v1/provider/stripe/connect", headers=tenant.admin).json()["url"])
    response = client.get(
        "/v1/stripe/connect/callback",
        params={"code": front.approve(), "state": url.params["state"]},
        headers={"Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert (response.status_code, response.headers["location"]) == (303, "/console/payments")
    status = client.get("/v1/provider/stripe/connect", headers=tenant.admin).json()
    assert status["connected"] is True
