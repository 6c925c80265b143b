"""``notify``: the outbox rows an event causes, written in the caller's transaction.

Each row is one message to one recipient with a dedup key unique in the table, inserted with
ON CONFLICT DO NOTHING: notifying the same event twice writes nothing the second time.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from meterplane.customers.models import Customer
from meterplane.invoicing.models import Invoice
from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.notifications.models import BillingEmail, Channel, OutboxMessage, OutboxStatus
from meterplane.notifications.webhooks import list_endpoints
from meterplane.tenancy.models import Provider


@dataclass(frozen=True)
class Route:
    customer_email: bool = False
    provider_email: bool = False
    webhook: bool = False
    # An email to the address in ``data["email"]`` (a portal magic link), not to the invoice's.
    data_email: bool = False


EVENTS: dict[str, Route] = {
    "invoice.draft_created": Route(webhook=True),
    "drafts.ready_for_review": Route(provider_email=True),
    "drafts.auto_approve_soon": Route(provider_email=True),
    "invoice.issued": Route(customer_email=True, webhook=True),
    # The provider sends an issued invoice again: the same email, no new webhook event.
    "invoice.resent": Route(customer_email=True),
    "invoice.paid": Route(customer_email=True, webhook=True),
    "invoice.payment_failed": Route(customer_email=True, webhook=True),
    "invoice.uncollectible": Route(customer_email=True),
    "invoice.past_due": Route(customer_email=True),
    "usage.rejected": Route(webhook=True),
    "portal.magic_link": Route(data_email=True),
}


def dedup_key(event: str, subject_id: str, channel: Channel, recipient: str) -> str:
    return f"{event}:{subject_id}:{channel.value}:{recipient}"


def event_id(event: str, subject_id: str) -> str:
    """The same event has the same id at every endpoint and on every retry."""
    return "evt_" + hashlib.sha256(f"{event}:{subject_id}".encode()).hexdigest()[:24]


def jsonable(value: Any) -> Any:
    """Decimals as exact strings, datetimes as ISO 8601: what a JSON column can hold."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def invoice_object(invoice: Invoice) -> dict[str, Any]:
    """The invoice as webhook consumers see it."""
    result: dict[str, Any] = jsonable(
        {
            "object": "invoice",
            "id": invoice.id,
            "number": invoice.number,
            "status": invoice.status,
            "customer_id": invoice.customer_id,
            "period": invoice.period,
            "currency": invoice.currency,
            "subtotal": invoice.subtotal,
            "tax_amount": invoice.tax_amount,
            "total": invoice.total,
            "issued_at": invoice.issued_at,
            "due_at": invoice.due_at,
            "paid_at": invoice.paid_at,
        }
    )
    return result


def invoice_id_of(subject_id: str, data: dict[str, Any]) -> str:
    """``data["invoice_id"]``, else the subject id up to its first ':' (``inv_x:attempt``)."""
    return str(data.get("invoice_id") or subject_id.partition(":")[0])


def notify(
    session: Session,
    provider_id: str,
    event: str,
    *,
    subject_id: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Write the event's emails and webhook deliveries to the outbox (idempotent)."""
    route = EVENTS.get(event)
    if route is None:
        raise ValueError(f"unknown notification event {event!r}")
    payload_data = jsonable(data)
    rows: list[dict[str, Any]] = []

    def add(channel: Channel, recipient: str, payload: dict[str, Any], **extra: Any) -> None:
        rows.append(
            {
                "provider_id": provider_id,
                "dedup_key": dedup_key(event, subject_id, channel, recipient),
                "event": event,
                "subject_id": subject_id,
                "channel": channel,
                "recipient": recipient,
                "payload": payload,
                "status": OutboxStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                # Every row names every column: one multi-row INSERT.
                "customer_id": None,
                "endpoint_id": None,
                **extra,
            }
        )

    endpoints = (
        [e for e in list_endpoints(session, provider_id) if event in e.events]
        if route.webhook
        else []
    )
    invoice: Invoice | None = None
    if route.customer_email or (endpoints and event.startswith("invoice.")):
        invoice = _invoice(session, provider_id, invoice_id_of(subject_id, data))
    if route.customer_email and invoice is not None:
        customer = session.get_one(Customer, invoice.customer_id)
        for address in billing_emails(session, customer):
            add(
                Channel.email,
                address,
                {"data": payload_data, "invoice_id": invoice.id, "locale": customer.locale},
                customer_id=customer.id,
            )
    if route.data_email:
        add(
            Channel.email,
            str(data["email"]),
            {"data": payload_data, "locale": str(data.get("locale") or "en_US")},
            customer_id=data.get("customer_id"),
        )
    if route.provider_email:
        provider = session.get_one(Provider, provider_id)
        if provider.support_email:
            add(Channel.email, provider.support_email, {"data": payload_data, "locale": "en_US"})
    if endpoints:
        body: dict[str, Any] = {
            "id": event_id(event, subject_id),
            "type": event,
            "created": int(now.timestamp()),
            "provider_id": provider_id,
            "data": {"object": invoice_object(invoice) if invoice else None, **payload_data},
        }
        for endpoint in endpoints:
            add(Channel.webhook, endpoint.id, body, endpoint_id=endpoint.id)
    if rows:
        _insert_ignoring_duplicates(session, rows)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(OutboxMessage).values(rows).on_conflict_do_nothing(index_elements=["dedup_key"])
    )


def _invoice(session: Session, provider_id: str, invoice_id: str) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.provider_id != provider_id:
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    return invoice


def billing_emails(session: Session, customer: Customer) -> list[str]:
    """The primary email first, then the extra billing emails, without duplicates."""
    extra = session.scalars(
        select(BillingEmail.email)
        .where(BillingEmail.customer_id == customer.id)
        .order_by(BillingEmail.id)
    )
    addresses = [customer.email, *extra]
    seen: set[str] = set()
    result = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def get_customer(session: Session, provider_id: str, customer_id: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.provider_id == provider_id, Customer.id == customer_id)
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
    return customer


def validate_locale(value: str) -> str:
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError) as exc:
        raise InvalidInput(f"unknown locale '{value}'", code="invalid_locale") from exc


def set_billing_emails(
    session: Session,
    provider_id: str,
    customer_id: str,
    emails: Sequence[str] | None,
    *,
    locale: str | None = None,
    now: datetime,
) -> Customer:
    """Replace the customer's extra billing emails (the primary email stays) and/or locale."""
    customer = get_customer(session, provider_id, customer_id)
    if locale is not None:
        customer.locale = validate_locale(locale)
    if emails is not None:
        normalized: list[str] = []
        for email in emails:
            try:
                address = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError as exc:
                raise InvalidInput(f"'{email}': {exc}", code="invalid_email") from exc
            if address.lower() not in {a.lower() for a in [customer.email, *normalized]}:
                normalized.append(address)
        session.execute(delete(BillingEmail).where(BillingEmail.customer_id == customer.id))
        session.add_all(
            BillingEmail(provider_id=provider_id, customer_id=customer.id, email=a, created_at=now)
            for a in normalized
        )
        session.flush()
    return customer


def get_billing_emails(session: Session, provider_id: str, customer_id: str) -> list[str]:
    """Every address the customer's billing mail goes to, primary first."""
    return billing_emails(session, get_customer(session, provider_id, customer_id))
