"""Billing emails, provider webhook endpoints and the outbox; all scoped to the caller."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.notifications import outbox, service, webhooks
from meterplane.notifications.models import Channel, OutboxAttempt, OutboxMessage, OutboxStatus
from meterplane.notifications.schemas import (
    AttemptOut,
    BillingEmailsIn,
    BillingEmailsOut,
    DeliveryOut,
    FailingAddressOut,
    OutboxMessageOut,
    Page,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
)

router = APIRouter(prefix="/v1", tags=["notifications"])


def _emails_out(customer_id: str, locale: str, addresses: list[str]) -> BillingEmailsOut:
    return BillingEmailsOut(
        customer_id=customer_id,
        primary=addresses[0],
        emails=addresses[1:],
        all=addresses,
        locale=locale,
    )


@router.get("/customers/{customer_id}/billing-emails")
def get_billing_emails(customer_id: str, caller: Admin, factory: Factory) -> BillingEmailsOut:
    with unit_of_work(factory) as session:
        customer = service.get_customer(session, caller.provider_id, customer_id)
        addresses = service.billing_emails(session, customer)
        return _emails_out(customer.id, customer.locale, addresses)


@router.patch("/customers/{customer_id}/billing-emails")
def set_billing_emails(
    customer_id: str, body: BillingEmailsIn, caller: Admin, factory: Factory, now: Now
) -> BillingEmailsOut:
    """Replace the extra billing emails (every invoice email goes to each) and/or the locale."""
    with unit_of_work(factory) as session:
        customer = service.set_billing_emails(
            session, caller.provider_id, customer_id, body.emails, locale=body.locale, now=now
        )
        addresses = service.billing_emails(session, customer)
        return _emails_out(customer.id, customer.locale, addresses)


@router.post("/webhook-endpoints", status_code=201)
def create_webhook_endpoint(
    body: WebhookEndpointIn, caller: Admin, factory: Factory, now: Now
) -> WebhookEndpointCreated:
    """Register an endpoint; the signing secret is in this answer only."""
    with unit_of_work(factory) as session:
        endpoint = webhooks.create_endpoint(
            session, caller.provider_id, body.url, body.events, now=now
        )
        return WebhookEndpointCreated.model_validate(endpoint, from_attributes=True)


@router.get("/webhook-endpoints")
def list_webhook_endpoints(caller: Admin, factory: Factory) -> Page[WebhookEndpointOut]:
    with unit_of_work(factory) as session:
        return Page(
            data=[
                WebhookEndpointOut.model_validate(e, from_attributes=True)
                for e in webhooks.list_endpoints(session, caller.provider_id)
            ]
        )


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_webhook_endpoint(
    endpoint_id: str, caller: Admin, factory: Factory, now: Now
) -> Response:
    with unit_of_work(factory) as session:
        webhooks.delete_endpoint(session, caller.provider_id, endpoint_id, now=now)
    return Response(status_code=204)


def _message_out(row: OutboxMessage, failing: set[str]) -> OutboxMessageOut:
    out = OutboxMessageOut.model_validate(row, from_attributes=True)
    out.address_failing = row.channel == Channel.email and row.recipient in failing
    return out


def _attempt_out(attempt: OutboxAttempt) -> AttemptOut:
    return AttemptOut.model_validate(attempt, from_attributes=True)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries")
def list_webhook_deliveries(
    endpoint_id: str,
    caller: Admin,
    factory: Factory,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[DeliveryOut]:
    """The endpoint's delivery log: each event with every attempt."""
    with unit_of_work(factory) as session:
        deliveries = webhooks.list_deliveries(session, caller.provider_id, endpoint_id, limit=limit)
        return Page(
            data=[
                DeliveryOut(
                    **_message_out(row, set()).model_dump(),
                    log=[_attempt_out(a) for a in attempts],
                )
                for row, attempts in deliveries
            ]
        )


@router.get("/outbox/failing-addresses")
def list_failing_addresses(caller: Admin, factory: Factory) -> Page[FailingAddressOut]:
    """Addresses the mail server refused for good; retry a message to clear one."""
    with unit_of_work(factory) as session:
        return Page(
            data=[
                FailingAddressOut.model_validate(f, from_attributes=True)
                for f in outbox.list_failing_addresses(session, caller.provider_id)
            ]
        )


@router.get("/outbox")
def list_outbox(
    caller: Admin,
    factory: Factory,
    status: OutboxStatus | None = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[OutboxMessageOut]:
    with unit_of_work(factory) as session:
        failing = {f.address for f in outbox.list_failing_addresses(session, caller.provider_id)}
        rows = outbox.list_messages(
            session, caller.provider_id, status=status, channel=channel, limit=limit, offset=offset
        )
        return Page(data=[_message_out(row, failing) for row in rows])


@router.get("/outbox/{message_id}")
def get_outbox_message(message_id: int, caller: Admin, factory: Factory) -> DeliveryOut:
    with unit_of_work(factory) as session:
        row = outbox.get_message(session, caller.provider_id, message_id)
        failing = {f.address for f in outbox.list_failing_addresses(session, caller.provider_id)}
        return DeliveryOut(
            **_message_out(row, failing).model_dump(),
            log=[_attempt_out(a) for a in outbox.attempts_of(session, row.id)],
        )


@router.post("/outbox/{message_id}/retry")
def retry_outbox_message(
    message_id: int, caller: Admin, factory: Factory, now: Now
) -> OutboxMessageOut:
    """Send a failed message again now (clears a failing mark on its address)."""
    with unit_of_work(factory) as session:
        row = outbox.retry(session, caller.provider_id, message_id, now=now)
        return _message_out(row, set())
