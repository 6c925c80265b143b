"""Charges, webhooks, retries, the reconciler, crash safety, refunds, tenant isolation."""

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from meterplane.payments.gateway import PaymentIntentInfo, StripeGateway
from tests.conftest import Clock, Tenant, build_catalogue
from tests.payments.conftest import (
    DECLINED,
    Billed,
    connect_account,
    deliver,
    history,
    issue_invoice,
    later,
    post_event,
    run,
    save_card,
    status,
)
from tests.payments.stripe_front import StripeFront


def test_happy_path_charge_then_paid_by_the_webhook(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    [attempt] = history(client, billed.tenant, billed.invoice_id)["attempts"]
    assert (attempt["status"], attempt["idempotency_key"]) == (
        "pending",
        f"{billed.invoice_id}:attempt:1",
    )
    report = run(factory, gateway, clock)
    assert report.submitted == [attempt["id"]]
    assert status(client, billed.tenant, billed.invoice_id) == "issued"  # until the webhook
    [intent] = front.listing(billed.account, "/v1/payment_intents")
    assert intent["amount"] == int(Decimal(billed.total) * 100)
    assert intent["metadata"]["meterplane_invoice_id"] == billed.invoice_id
    [customer] = front.listing(billed.account, "/v1/customers")
    assert customer["metadata"]["external_billing_id"] == "GX-1"
    assert intent["customer"] == customer["id"]

    deliver(client, front, billed.account, "payment_intent.succeeded")
    report = run(factory, gateway, clock)
    assert [o.event for o in report.outcomes] == ["invoice.paid"]
    invoice = client.get(f"/v1/invoices/{billed.invoice_id}", headers=billed.tenant.admin).json()
    assert invoice["status"] == "paid" and invoice["paid_at"] is not None
    paid = history(client, billed.tenant, billed.invoice_id)
    assert paid["amount_paid"] == billed.total
    assert paid["attempts"][0]["stripe_payment_intent_id"] == intent["id"]
    assert paid["attempts"][0]["outcome_source"].startswith("webhook:evt_")


def test_duplicate_webhooks_are_stored_once_and_bad_signatures_not_at_all(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    run(factory, gateway, clock)
    [event] = front.events(billed.account, "payment_intent.succeeded")
    assert post_event(client, event).json()["duplicate"] is False
    assert post_event(client, event).json()["duplicate"] is True
    forged = client.post(
        "/v1/stripe/webhooks",
        content=b'{"id": "evt_x", "type": "x"}',
        headers={"Stripe-Signature": "t=1,v1=00"},
    )
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "invalid_signature")
    report = run(factory, gateway, clock)
    assert report.events == 1 and [o.event for o in report.outcomes] == ["invoice.paid"]
    assert post_event(client, event).json()["duplicate"] is True
    assert run(factory, gateway, clock).events == 0


def test_declined_card_retries_on_schedule_and_succeeds_after_the_card_is_replaced(
    client: TestClient,
    tenant: Tenant,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    account = connect_account(client, tenant, front)
    catalogue = build_catalogue(client, tenant)
    save_card(client, tenant, front, account, catalogue.customer_id, DECLINED)
    invoice_id, _ = issue_invoice(client, tenant, catalogue, clock, factory)
    run(factory, gateway, clock)
    deliver(client, front, account, "payment_intent.payment_failed")
    report = run(factory, gateway, clock)
    [failed] = report.outcomes
    assert failed.event == "invoice.payment_failed" and "card_declined" in (failed.reason or "")
    assert failed.next_retry_at is not None and (failed.next_retry_at - clock()).days == 3
    assert status(client, tenant, invoice_id) == "payment_failed"
    first = history(client, tenant, invoice_id)["attempts"][0]
    assert (first["status"], first["decline_code"]) == ("failed", "card_declined")

    later(clock, days=2)
    assert run(factory, gateway, clock).retries == []  # not due yet
    save_card(client, tenant, front, account, catalogue.customer_id)  # the customer fixes it
    later(clock, days=1, minutes=1)
    report = run(factory, gateway, clock)
    assert len(report.retries) == 1 and report.submitted == report.retries
    deliver(client, front, account, "payment_intent.succeeded")
    deliver(client, front, account, "payment_intent.payment_failed")  # the old one, again
    run(factory, gateway, clock)
    assert status(client, tenant, invoice_id) == "paid"
    attempts = history(client, tenant, invoice_id)["attempts"]
    assert [(a["attempt_number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert attempts[0]["payment_method"] != attempts[1]["payment_method"]


def test_retries_exhausted_make_the_invoice_uncollectible(
    client: TestClient,
    tenant: Tenant,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    settings = client.patch(
        "/v1/provider/payment-settings", headers=tenant.admin, json={"retry_schedule_days": [1, 2]}
    )
    assert settings.json()["retry_schedule_days"] == [1, 2]
    account = connect_account(client, tenant, front)
    catalogue = build_catalogue(client, tenant)
    save_card(client, tenant, front, account, catalogue.customer_id, DECLINED)
    invoice_id, _ = issue_invoice(client, tenant, catalogue, clock, factory)
    events: list[str] = []
    for _ in range(3):
        run(factory, gateway, clock)
        deliver(client, front, account, "payment_intent.payment_failed")
        report = run(factory, gateway, clock)
        events += [o.event for o in report.outcomes]
        later(clock, days=2, minutes=1)
    assert events == ["invoice.payment_failed", "invoice.payment_failed", "invoice.uncollectible"]
    assert status(client, tenant, invoice_id) == "uncollectible"
    assert run(factory, gateway, clock).retries == []
    assert len(front.listing(account, "/v1/payment_intents")) == 3


def test_a_missed_webhook_is_caught_by_the_reconciler(
    client: TestClient,
    billed: Billed,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    run(factory, gateway, clock)
    later(clock, minutes=10)
    assert run(factory, gateway, clock).reconciled == []  # still patient (30 minutes)
    later(clock, minutes=25)
    report = run(factory, gateway, clock)
    assert len(report.reconciled) == 1 and [o.event for o in report.outcomes] == ["invoice.paid"]
    assert (
        history(client, billed.tenant, billed.invoice_id)["attempts"][0]["outcome_source"]
        == "reconciler"
    )


def test_out_of_order_webhooks_never_move_an_invoice_backwards(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    run(factory, gateway, clock)
    [succeeded] = front.events(billed.account, "payment_intent.succeeded")
    stale = {
        **succeeded,
        "id": "evt_stale_failure",
        "type": "payment_intent.payment_failed",
        "data": {
            "object": {
                **succeeded["data"]["object"],
                "status": "requires_payment_method",
                "last_payment_error": {"code": "card_declined", "message": "declined"},
            }
        },
    }
    post_event(client, succeeded)
    run(factory, gateway, clock)
    post_event(client, stale)
    report = run(factory, gateway, clock)
    assert report.events == 1 and report.outcomes == []
    assert status(client, billed.tenant, billed.invoice_id) == "paid"
    assert history(client, billed.tenant, billed.invoice_id)["attempts"][0]["status"] == (
        "succeeded"
    )


class CrashAfterStripe:
    """The real gateway, and a crash right after Stripe confirmed (before our commit)."""

    def __init__(self, real: StripeGateway) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def confirm_payment_intent(self, *args: Any, **kwargs: Any) -> PaymentIntentInfo:
        self.real.confirm_payment_intent(*args, **kwargs)
        raise SystemExit("worker killed after the Stripe call")


def test_a_crash_between_the_stripe_call_and_the_commit_charges_once(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    with pytest.raises(SystemExit):
        run(factory, CrashAfterStripe(gateway), clock)
    assert history(client, billed.tenant, billed.invoice_id)["attempts"][0]["status"] == ("pending")
    report = run(factory, gateway, clock)
    assert len(report.submitted) == 1
    assert len(front.listing(billed.account, "/v1/payment_intents")) == 1
    assert len(front.listing(billed.account, "/v1/charges")) == 1
    replays = [e for e in front.log if e.account == billed.account and e.replayed]
    assert {e.path.rsplit("/", 1)[-1] for e in replays} == {"payment_intents", "confirm"}
    deliver(client, front, billed.account, "payment_intent.succeeded")
    run(factory, gateway, clock)
    assert status(client, billed.tenant, billed.invoice_id) == "paid"


def test_refunds_full_and_partial(
    client: TestClient,
    billed: Billed,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    path = f"/v1/invoices/{billed.invoice_id}/refunds"
    early = client.post(path, json={"amount": "1"}, headers=billed.tenant.admin)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "not_refundable")
    run(factory, gateway, clock)
    deliver(client, front, billed.account, "payment_intent.succeeded")
    run(factory, gateway, clock)
    part = client.post(
        path, json={"amount": "1.50", "reason": "goodwill"}, headers=billed.tenant.admin
    )
    assert part.status_code == 201, part.text
    assert (part.json()["status"], part.json()["amount"]) == ("succeeded", "1.50")
    too_much = client.post(path, json={"amount": billed.total}, headers=billed.tenant.admin)
    assert too_much.json()["error"]["code"] == "invalid_refund_amount"
    rest = client.post(path, headers=billed.tenant.admin)
    assert rest.status_code == 201, rest.text
    result = history(client, billed.tenant, billed.invoice_id)
    assert result["amount_refunded"] == result["amount_paid"] == billed.total
    refunds = front.listing(billed.account, "/v1/refunds")
    assert sorted(r["amount"] for r in refunds) == sorted(
        r["amount_minor"] for r in result["refunds"]
    )
    assert client.post(path, headers=billed.tenant.admin).status_code == 422


def test_portal_payment_without_a_saved_card(
    client: TestClient,
    tenant: Tenant,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    account = connect_account(client, tenant, front)
    catalogue = build_catalogue(client, tenant)
    invoice_id, total = issue_invoice(client, tenant, catalogue, clock, factory)
    assert history(client, tenant, invoice_id)["attempts"] == []  # stays open
    assert run(factory, gateway, clock).submitted == []
    pay = client.post(f"/v1/invoices/{invoice_id}/pay", headers=tenant.admin)
    assert pay.status_code == 200, pay.text
    body = pay.json()
    assert body["client_secret"].startswith(body["payment_intent"])
    assert (body["stripe_account"], body["amount"]) == (account, total)
    again = client.post(f"/v1/invoices/{invoice_id}/pay", headers=tenant.admin).json()
    assert again["payment_intent"] == body["payment_intent"]
    with front.api(account) as api:  # the browser: a card, then confirm (Stripe.js)
        pm = api.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        ).json()["id"]
        api.post(f"/v1/payment_intents/{body['payment_intent']}", data={"payment_method": pm})
        assert (
            api.post(f"/v1/payment_intents/{body['payment_intent']}/confirm").json()["status"]
            == "succeeded"
        )
    deliver(client, front, account, "payment_intent.succeeded")
    run(factory, gateway, clock)
    assert status(client, tenant, invoice_id) == "paid"


def test_two_providers_never_mix_customers_charges_or_invoices(
    client: TestClient,
    make_tenant: Any,
    front: StripeFront,
    factory: sessionmaker[Session],
    gateway: StripeGateway,
    clock: Clock,
) -> None:
    acme, initech = make_tenant("Acme"), make_tenant("Initech")
    setups = []
    for tenant in (acme, initech):
        account = connect_account(client, tenant, front)
        catalogue = build_catalogue(client, tenant, suffix=tenant.provider_id[-4:])
        save_card(client, tenant, front, account, catalogue.customer_id)
        invoice_id, _ = issue_invoice(
            client, tenant, catalogue, clock, factory, instance=f"db-{tenant.provider_id[-4:]}"
        )
        setups.append((tenant, account, catalogue, invoice_id))
    run(factory, gateway, clock)
    (a_tenant, a_account, a_cat, a_invoice), (b_tenant, b_account, b_cat, b_invoice) = setups
    for _tenant, account, catalogue, invoice_id in setups:
        [customer] = front.listing(account, "/v1/customers")
        assert customer["metadata"]["meterplane_customer_id"] == catalogue.customer_id
        [intent] = front.listing(account, "/v1/payment_intents")
        assert intent["metadata"]["meterplane_invoice_id"] == invoice_id
    # An event of A's payment claimed by B's account is not applied.
    [a_event] = front.events(a_account, "payment_intent.succeeded")
    post_event(client, {**a_event, "id": "evt_forged_account", "account": b_account})
    run(factory, gateway, clock)
    assert status(client, a_tenant, a_invoice) == "issued"
    for _tenant, account, _catalogue, _invoice in setups:
        deliver(client, front, account, "payment_intent.succeeded")
    run(factory, gateway, clock)
    assert status(client, a_tenant, a_invoice) == status(client, b_tenant, b_invoice) == "paid"
    # Another provider's key: 404 on every route that names an object.
    for method, path, body in (
        ("get", f"/v1/invoices/{a_invoice}/payments", None),
        ("post", f"/v1/invoices/{a_invoice}/refunds", {}),
        ("post", f"/v1/invoices/{a_invoice}/pay", None),
        ("post", f"/v1/customers/{a_cat.customer_id}/setup-intents", None),
        (
            "post",
            f"/v1/customers/{a_cat.customer_id}/payment-methods/default",
            {"payment_method": "pm_card_visa"},
        ),
    ):
        response = client.request(method, path, json=body, headers=b_tenant.admin)
        assert response.status_code == 404, (path, response.text)
    b_pm = history(client, b_tenant, b_invoice)["attempts"][0]["payment_method"]
    stolen = client.post(
        f"/v1/customers/{b_cat.customer_id}/payment-methods/default",
        json={
            "payment_method": history(client, a_tenant, a_invoice)["attempts"][0]["payment_method"]
        },
        headers=b_tenant.admin,
    )
    assert stolen.status_code == 502  # A's card does not exist on B's account
    assert history(client, b_tenant, b_invoice)["attempts"][0]["payment_method"] == b_pm
