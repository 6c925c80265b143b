"""Paying an open invoice from the portal with the customer's saved card.

The server creates the PaymentIntent with the saved card and confirms it on session (the
customer is present, clicking "Pay"); when the bank asks for authentication (3-D Secure) the
page hands the client secret to ``stripe.confirmCardPayment``. Either way the invoice becomes
paid the way every payment does: by the ``payment_intent.succeeded`` webhook (or the
reconciler), never by this request.

The attempt is recorded and committed before each Stripe call with its idempotency key, like
every other attempt (:mod:`meterplane.payments.collection`), so a double click or a retry
after a crash confirms one PaymentIntent once.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from meterplane.customers.service import get_customer
from meterplane.invoicing import service as invoices
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import OPEN_FOR_PAYMENT
from meterplane.kit.db import transaction
from meterplane.kit.errors import Conflict
from meterplane.payments import collection, service
from meterplane.payments.connect import require_account
from meterplane.payments.errors import PaymentDeclined
from meterplane.payments.gateway import PaymentGateway, PaymentIntentInfo
from meterplane.payments.models import AttemptKind, AttemptStatus, PaymentAttempt
from meterplane.portal.views import visible_invoice

# Stripe statuses of a live portal attempt that may still end in a charge.
STILL_CHARGING = frozenset({"processing", "succeeded", "requires_capture"})


@dataclass(frozen=True)
class PortalCharge:
    status: (
        str  # the PaymentIntent's: succeeded, processing, requires_action, requires_payment_method
    )
    client_secret: str | None
    payment_intent: str
    error: str | None = None


def _reusable(session: Session, invoice: Invoice, payment_method: str) -> PaymentAttempt | None:
    """A live attempt to carry on with, or None; refuses while another charge is under way."""
    for attempt in service.attempts_of(session, invoice.id):
        if attempt.status not in service.LIVE_ATTEMPT:
            continue
        if attempt.kind == AttemptKind.off_session or attempt.stripe_status in STILL_CHARGING:
            raise Conflict(
                "a payment of this invoice is already being processed; "
                "its outcome will show here in a moment",
                code="payment_in_progress",
            )
        resumable = attempt.status == AttemptStatus.pending or attempt.stripe_status in (
            "requires_action",
            "requires_confirmation",
        )
        mine = attempt.kind == AttemptKind.portal and attempt.payment_method == payment_method
        if resumable and mine:
            return attempt
    return None


def pay_with_saved_card(
    factory: sessionmaker[Session],
    gateway: PaymentGateway,
    provider_id: str,
    customer_id: str,
    invoice_id: str,
    *,
    now: datetime,
) -> PortalCharge:
    """Charge the customer's default card for one of its open invoices (on session)."""
    with transaction(factory) as session:
        visible_invoice(session, provider_id, customer_id, invoice_id)
        invoice = invoices.get_invoice(session, provider_id, invoice_id, lock=True)
        if invoice.status not in OPEN_FOR_PAYMENT or invoice.total <= 0:
            raise Conflict("this invoice has nothing left to pay", code="invoice_not_payable")
        customer = get_customer(session, provider_id, customer_id)
        method = customer.default_payment_method
        if not method:
            raise Conflict("add a card first, then pay", code="payment_method_required")
        account = require_account(session, provider_id).stripe_account_id
        attempt = _reusable(session, invoice, method) or service.new_attempt(
            session,
            invoice,
            kind=AttemptKind.portal,
            stripe_account_id=account,
            payment_method=method,
            now=now,
        )
        attempt_id, key = attempt.id, attempt.idempotency_key
        account = attempt.stripe_account_id
    collection.submit_attempt(factory, gateway, attempt_id, now=now)
    with transaction(factory) as session:
        attempt = service.get_attempt(session, attempt_id)
        intent_id, status = attempt.stripe_payment_intent_id, attempt.status
        reason = attempt.failure_reason
    if intent_id is None or status == AttemptStatus.failed:
        raise Conflict(
            reason or "the payment could not be prepared; try again", code="payment_failed"
        )
    error = None
    intent: PaymentIntentInfo
    try:
        intent = gateway.confirm_payment_intent(
            account, intent_id, off_session=False, idempotency_key=f"{key}:confirm"
        )
    except PaymentDeclined as declined:
        error = declined.message
        intent = gateway.retrieve_payment_intent(account, intent_id)
    with transaction(factory) as session:
        service.record_submission(
            session, service.get_attempt(session, attempt_id), intent, now=now
        )
    if intent.status == "requires_action" and error is None:
        return PortalCharge(intent.status, intent.client_secret, intent.id)
    if error is None and intent.status == "requires_payment_method":
        error = intent.failure_message or "the card was declined"
    return PortalCharge(intent.status, None, intent.id, error)
