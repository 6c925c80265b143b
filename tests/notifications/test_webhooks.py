"""Provider webhooks: signed deliveries checked by a receiver, retries and the delivery log,
and one provider never sees or touches another's outbox, endpoints or customers."""

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from meterplane.notifications.webhooks import verify
from tests.conftest import Clock, Tenant, build_catalogue
from tests.notifications.conftest import Deliver, Receiver, approve, as_json, outbox


def register(client: TestClient, tenant: Tenant, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": events}, headers=tenant.admin
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def check_signature(headers: dict[str, str], body: bytes, secret: str, now: int) -> None:
    """What a provider's receiver does (docs/notifications.md), written out by hand."""
    fields = dict(item.split("=", 1) for item in headers["meterplane-signature"].split(","))
    timestamp = int(fields["t"])
    assert abs(now - timestamp) <= 300
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), fields["v1"])


def test_issued_invoice_is_posted_signed_and_verifiable(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    receiver: Receiver,
    deliver: Deliver,
    clock: Clock,
) -> None:
    endpoint = register(client, tenant, receiver.url, ["invoice.issued", "invoice.paid"])
    assert endpoint["secret"].startswith("whsec_")
    listed = client.get("/v1/webhook-endpoints", headers=tenant.admin).json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]

    issued = approve(client, tenant, frozen["id"])
    deliver()
    [(headers, body)] = receiver.requests
    now = int(clock().timestamp())
    check_signature(headers, body, endpoint["secret"], now)
    assert verify(endpoint["secret"], headers["meterplane-signature"], body, now=now)
    assert not verify("whsec_other", headers["meterplane-signature"], body, now=now)
    assert not verify(endpoint["secret"], headers["meterplane-signature"], body, now=now + 301)
    assert not verify(endpoint["secret"], headers["meterplane-signature"], body + b" ", now=now)
    event = as_json(body)
    assert event["type"] == "invoice.issued"
    assert headers["meterplane-event-id"] == event["id"]
    assert event["data"]["object"]["number"] == issued["number"]
    assert event["data"]["object"]["total"] == "84.54"
    # Delivered once; a second pass sends nothing.
    deliver()
    assert len(receiver.requests) == 1


def test_failing_endpoint_is_retried_and_the_log_shows_each_attempt(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    receiver: Receiver,
    deliver: Deliver,
    clock: Clock,
) -> None:
    endpoint = register(client, tenant, receiver.url, ["invoice.issued"])
    receiver.statuses = [500, 503]
    approve(client, tenant, frozen["id"])
    start = clock()
    assert deliver().retried == 1
    clock.set(start + timedelta(minutes=1))
    assert deliver().retried == 1
    clock.set(start + timedelta(minutes=2))
    assert deliver().retried == 0  # next try at +3 min (1 + 2)
    clock.set(start + timedelta(minutes=3))
    assert deliver().sent == 1
    assert len(receiver.requests) == 3
    # The same event id on every attempt: receivers can dedupe.
    assert len({headers["meterplane-event-id"] for headers, _ in receiver.requests}) == 1
    response = client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=tenant.admin
    )
    [delivery] = response.json()["data"]
    assert delivery["status"] == "sent" and delivery["event"] == "invoice.issued"
    assert [(a["outcome"], a["status_code"]) for a in delivery["log"]] == [
        ("retry", 500),
        ("retry", 503),
        ("sent", 200),
    ]


def test_rejected_usage_is_reported_per_batch(
    client: TestClient, tenant: Tenant, receiver: Receiver, deliver: Deliver
) -> None:
    endpoint = register(client, tenant, receiver.url, ["usage.rejected"])
    response = client.post(
        "/v1/usage/samples",
        json={
            "samples": [
                {
                    "instance_id": "nope",
                    "node_id": "n1",
                    "timestamp": "2026-10-20T11:00:00Z",
                    "cpu_cores": 1,
                }
            ]
        },
        headers=tenant.ingest,
    )
    assert response.status_code == 200 and response.json()["rejected"]
    deliver()
    [(headers, body)] = receiver.requests
    event = as_json(body)
    assert event["type"] == "usage.rejected"
    assert event["data"]["batch_id"] == response.json()["batch_id"]
    assert event["data"]["rejected"] == 1
    code = response.json()["rejected"][0]["code"]
    assert event["data"]["codes"] == {code: 1}
    assert verify(endpoint["secret"], headers["meterplane-signature"], body, now=event["created"])


def test_webhook_endpoints_validate_their_input(client: TestClient, tenant: Tenant) -> None:
    for body, code in (
        ({"url": "ftp://x.example", "events": ["invoice.issued"]}, "invalid_url"),
        ({"url": "https://x.example", "events": ["invoice.exploded"]}, "invalid_events"),
    ):
        response = client.post("/v1/webhook-endpoints", json=body, headers=tenant.admin)
        assert (response.status_code, response.json()["error"]["code"]) == (422, code)


def test_another_provider_sees_and_touches_nothing(
    client: TestClient,
    tenant: Tenant,
    frozen: dict[str, Any],
    receiver: Receiver,
    make_tenant: Any,
) -> None:
    endpoint = register(client, tenant, receiver.url, ["invoice.issued"])
    approve(client, tenant, frozen["id"])
    rows = outbox(client, tenant)
    assert rows
    other = make_tenant("Initech")
    build_catalogue(client, other, suffix="-other")
    assert outbox(client, other) == []
    assert client.get("/v1/webhook-endpoints", headers=other.admin).json()["data"] == []
    for method, path in (
        ("post", f"/v1/outbox/{rows[0]['id']}/retry"),
        ("get", f"/v1/outbox/{rows[0]['id']}"),
        ("get", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"),
        ("delete", f"/v1/webhook-endpoints/{endpoint['id']}"),
        ("get", f"/v1/customers/{frozen['customer_id']}/billing-emails"),
        ("patch", f"/v1/customers/{frozen['customer_id']}/billing-emails"),
    ):
        kwargs: dict[str, Any] = {"json": {"emails": []}} if method == "patch" else {}
        response = client.request(method.upper(), path, headers=other.admin, **kwargs)
        assert response.status_code == 404, (path, response.text)
        assert set(response.json()["error"]) >= {"code", "message"}
    # Still there for its owner.
    assert client.get("/v1/webhook-endpoints", headers=tenant.admin).json()["data"]
    assert (
        client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=tenant.admin).status_code
        == 204
    )
