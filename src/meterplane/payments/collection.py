"""Flows that call Stripe: each records its intent and commits before the call, so a crash
followed by a rerun repeats the call with the same idempotency key and Stripe replays it.

Like the monthly close, these take a session factory and own their transactions.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.customers import service as customers
from meterplane.customers.models import Customer
from meterplane.invoicing import service as invoices
from meterplane.invoicing.states import OPEN_FOR_PAYMENT
from meterplane.kit.db import transaction
from meterplane.kit.errors import Conflict, InvalidInput
from meterplane.payments import service
from meterplane.payments.connect import require_account
from meterplane.payments.errors import PaymentDeclined, StripeRejected
from meterplane.payments.gateway import PaymentGateway
from meterplane.payments.models import (
    AttemptKind,
    AttemptStatus,
    PaymentAttempt,
    PaymentRefund,
    RefundStatus,
    StripeCustomer,
)

log = logging.getLogger("meterplane.payments")


def ensure_stripe_customer(
    session: Session, gateway: PaymentGateway, customer: Customer, account: str, *, now: datetime
) -> str:
    """The customer's id on the connected account, created there when first needed.

    The creation carries a key derived from our customer id: a crash before the row below is
    committed, then a rerun, gets the same Stripe customer back.
    """
    row = session.get(StripeCustomer, (customer.id, account))
    if row is not None:
        return row.stripe_customer_id
    metadata = {"meterplane_customer_id": customer.id}
    if customer.external_billing_id:
        metadata["external_billing_id"] = customer.external_billing_id
    stripe_id = gateway.create_customer(
        account,
        name=customer.name,
        email=customer.email,
        metadata=metadata,
        idempotency_key=f"customer:{customer.id}",
    )
    session.add(
        StripeCustomer(
            customer_id=customer.id,
            stripe_account_id=account,
            provider_id=customer.provider_id,
            stripe_customer_id=stripe_id,
            created_at=now,
        )
    )
    session.flush()
    return stripe_id


def _metadata(attempt: PaymentAttempt) -> dict[str, str]:
    return {
        "meterplane_attempt_id": attempt.id,
        "meterplane_invoice_id": attempt.invoice_id,
        "meterplane_provider_id": attempt.provider_id,
    }


def submit_attempt(
    factory: sessionmaker[Session], gateway: PaymentGateway, attempt_id: str, *, now: datetime
) -> str:
    """Create (and, off session, confirm) the attempt's PaymentIntent; returns what happened."""
    with transaction(factory) as session:
        attempt = service.get_attempt(session, attempt_id)
        if attempt.status != AttemptStatus.pending:
            return "skipped"
        customer = session.get_one(Customer, attempt.customer_id)
        stripe_customer = ensure_stripe_customer(
            session, gateway, customer, attempt.stripe_account_id, now=now
        )
        account, key, kind = attempt.stripe_account_id, attempt.idempotency_key, attempt.kind
        amount, currency, method = attempt.amount_minor, attempt.currency, attempt.payment_method
        metadata = _metadata(attempt)
    try:
        intent = gateway.create_payment_intent(
            account,
            amount=amount,
            currency=currency,
            customer=stripe_customer,
            payment_method=method,
            metadata=metadata,
            idempotency_key=key,
        )
        if kind == AttemptKind.off_session:
            try:
                intent = gateway.confirm_payment_intent(
                    account, intent.id, off_session=True, idempotency_key=f"{key}:confirm"
                )
            except PaymentDeclined as exc:
                # The outcome comes with the webhook; the decline is known, not final yet.
                log.info("attempt %s declined: %s", attempt_id, exc.message)
                intent = gateway.retrieve_payment_intent(account, intent.id)
    except StripeRejected as exc:
        with transaction(factory) as session:
            attempt = service.get_attempt(session, attempt_id)
            service.mark_failed(
                session,
                attempt,
                code=exc.code,
                decline_code=str(exc.details.get("stripe_code") or exc.code),
                message=exc.message,
                source="submission",
                now=now,
            )
        return "rejected"
    with transaction(factory) as session:
        attempt = service.get_attempt(session, attempt_id)
        service.record_submission(session, attempt, intent, now=now)
    return "submitted"


def _open_invoice(session: Session, provider_id: str, invoice_id: str) -> Any:
    invoice = invoices.get_invoice(session, provider_id, invoice_id, lock=True)
    if invoice.status not in OPEN_FOR_PAYMENT:
        raise Conflict(
            f"invoice {invoice.id} is {invoice.status}; there is nothing to pay",
            code="invoice_not_payable",
            status=invoice.status,
        )
    if invoice.total <= 0:
        raise Conflict(f"invoice {invoice.id} has nothing to pay", code="invoice_not_payable")
    return invoice


@dataclass(frozen=True)
class PortalPayment:
    attempt_id: str
    payment_intent: str
    client_secret: str
    stripe_account: str
    publishable_key: str
    js_url: str
    amount: str
    currency: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def pay_in_portal(
    factory: sessionmaker[Session],
    gateway: PaymentGateway,
    provider_id: str,
    invoice_id: str,
    *,
    now: datetime,
) -> PortalPayment:
    """A PaymentIntent for the customer to confirm with a card in the browser (Stripe.js)."""
    with transaction(factory) as session:
        invoice = _open_invoice(session, provider_id, invoice_id)
        account = require_account(session, provider_id)
        attempt = None
        for existing in service.attempts_of(session, invoice.id):
            if existing.status not in service.LIVE_ATTEMPT:
                continue
            if existing.kind == AttemptKind.off_session:
                raise Conflict(
                    f"a charge of invoice {invoice.id} is in progress; wait for its outcome",
                    code="payment_in_progress",
                )
            if existing.stripe_account_id == account.stripe_account_id:
                attempt = existing
        if attempt is None:
            attempt = service.new_attempt(
                session,
                invoice,
                kind=AttemptKind.portal,
                stripe_account_id=account.stripe_account_id,
                payment_method=None,
                now=now,
            )
        attempt_id = attempt.id
        pending = attempt.status == AttemptStatus.pending
        existing_intent = attempt.stripe_payment_intent_id
    if pending:
        submit_attempt(factory, gateway, attempt_id, now=now)
    with transaction(factory) as session:
        attempt = service.get_attempt(session, attempt_id)
        intent_id = attempt.stripe_payment_intent_id or existing_intent
        account_id, amount, currency = (
            attempt.stripe_account_id,
            attempt.amount_minor,
            attempt.currency,
        )
    if intent_id is None:
        raise Conflict("the payment could not be prepared; try again", code="payment_not_ready")
    intent = gateway.retrieve_payment_intent(account_id, intent_id)
    return PortalPayment(
        attempt_id=attempt_id,
        payment_intent=intent.id,
        client_secret=intent.client_secret or "",
        stripe_account=account_id,
        publishable_key=gateway.publishable_key,
        js_url=gateway.js_url,
        amount=format(service.from_minor(amount, currency), "f"),
        currency=currency,
    )


def submit_refund(
    factory: sessionmaker[Session], gateway: PaymentGateway, refund_id: str, *, now: datetime
) -> PaymentRefund:
    with transaction(factory) as session:
        refund = session.get_one(PaymentRefund, refund_id)
        if refund.status != RefundStatus.pending:
            return refund
        attempt = service.get_attempt(session, refund.attempt_id)
        account, intent = attempt.stripe_account_id, attempt.stripe_payment_intent_id
        amount, key = refund.amount_minor, refund.idempotency_key
    if intent is None:
        raise Conflict("the payment has no PaymentIntent to refund", code="not_refundable")
    try:
        result = gateway.refund(account, payment_intent=intent, amount=amount, idempotency_key=key)
    except (StripeRejected, PaymentDeclined) as exc:
        with transaction(factory) as session:
            refund = session.get_one(PaymentRefund, refund_id)
            refund.status = RefundStatus.failed
            refund.failure_reason = exc.message
            refund.completed_at = now
        return refund
    with transaction(factory) as session:
        refund = session.get_one(PaymentRefund, refund_id)
        refund.stripe_refund_id = result.id
        refund.status = (
            RefundStatus.failed
            if result.status in ("failed", "canceled")
            else RefundStatus.succeeded
        )
        refund.completed_at = now
    return refund


def refund_invoice(
    factory: sessionmaker[Session],
    gateway: PaymentGateway,
    provider_id: str,
    invoice_id: str,
    *,
    amount: Decimal | None,
    reason: str | None,
    actor: str,
    now: datetime,
) -> PaymentRefund:
    """Refund all or part of a paid invoice on the connected account it was paid to."""
    with transaction(factory) as session:
        refund_id = service.new_refund(
            session, provider_id, invoice_id, amount=amount, reason=reason, actor=actor, now=now
        ).id
    return submit_refund(factory, gateway, refund_id, now=now)


def pending_refunds(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(PaymentRefund.id)
            .where(PaymentRefund.status == RefundStatus.pending)
            .order_by(PaymentRefund.created_at)
        )
    )


# Saved cards ------------------------------------------------------------------------------


def create_setup_intent(
    factory: sessionmaker[Session],
    gateway: PaymentGateway,
    provider_id: str,
    customer_id: str,
    *,
    now: datetime,
) -> dict[str, str]:
    """A SetupIntent the portal confirms with Stripe.js to save a card for later charges."""
    with transaction(factory) as session:
        customer = customers.get_customer(session, provider_id, customer_id)
        account = require_account(session, provider_id).stripe_account_id
        stripe_customer = ensure_stripe_customer(session, gateway, customer, account, now=now)
    intent = gateway.create_setup_intent(
        account, customer=stripe_customer, metadata={"meterplane_customer_id": customer_id}
    )
    return {
        "setup_intent": intent.id,
        "client_secret": intent.client_secret,
        "status": intent.status,
        "stripe_account": account,
        "stripe_customer": stripe_customer,
        "publishable_key": gateway.publishable_key,
        "js_url": gateway.js_url,
    }


def set_default_payment_method(
    factory: sessionmaker[Session],
    gateway: PaymentGateway,
    provider_id: str,
    customer_id: str,
    payment_method: str,
    *,
    actor: str,
    now: datetime,
) -> Customer:
    """Check the card with Stripe, make it the customer's default there and here."""
    with transaction(factory) as session:
        customer = customers.get_customer(session, provider_id, customer_id)
        account = require_account(session, provider_id).stripe_account_id
        stripe_customer = ensure_stripe_customer(session, gateway, customer, account, now=now)
    method = gateway.retrieve_payment_method(account, payment_method)
    if method.customer not in (None, stripe_customer):
        raise InvalidInput(
            f"payment method {payment_method} belongs to another customer",
            code="payment_method_not_owned",
        )
    if method.customer is None:
        gateway.attach_payment_method(account, payment_method, customer=stripe_customer)
    gateway.set_default_payment_method(
        account, customer=stripe_customer, payment_method=payment_method
    )
    with transaction(factory) as session:
        return customers.set_default_payment_method(
            session, provider_id, customer_id, payment_method, actor=actor, now=now
        )
