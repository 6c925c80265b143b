"""Collection in the database: attempts, outcomes, the retry schedule, refunds and history.

These functions never call Stripe and never commit; :mod:`meterplane.payments.collection`
makes the Stripe calls around them, each attempt committed before its call.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.customers.models import Customer
from meterplane.invoicing import service as invoices
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import OPEN_FOR_PAYMENT, InvoiceStatus
from meterplane.kit.errors import Conflict, InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.kit.money import minor_units, round_money
from meterplane.notifications.service import notify
from meterplane.payments.connect import get_account
from meterplane.payments.gateway import PaymentIntentInfo
from meterplane.payments.models import (
    DEFAULT_RECONCILE_AFTER_MINUTES,
    DEFAULT_RETRY_SCHEDULE_DAYS,
    FINAL_ATTEMPT,
    AttemptKind,
    AttemptStatus,
    PaymentAttempt,
    PaymentRefund,
    PaymentSettings,
    RefundStatus,
)

LIVE_ATTEMPT = frozenset({AttemptStatus.pending, AttemptStatus.submitted})
MAX_RETRIES = 10
MAX_RETRY_DAYS = 60


@dataclass(frozen=True)
class Outcome:
    """What an attempt's outcome did to its invoice (already announced through the outbox)."""

    invoice_id: str
    event: str  # "invoice.paid", "invoice.payment_failed", "invoice.uncollectible"
    attempt_id: str
    reason: str | None = None
    next_retry_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "event": self.event,
            "attempt_id": self.attempt_id,
            "reason": self.reason,
            "next_retry_at": self.next_retry_at.isoformat() if self.next_retry_at else None,
        }


def to_minor(amount: Decimal, currency: str) -> int:
    """Money as Stripe's integer minor units (cents); refuses fractions of a minor unit."""
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise InvalidInput(
            f"{amount} has more decimals than {currency} allows", code="invalid_amount"
        )
    return int(rounded.scaleb(minor_units(currency)))


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_units(currency))


# Settings ---------------------------------------------------------------------------------


def payment_settings(session: Session, provider_id: str) -> dict[str, Any]:
    row = session.get(PaymentSettings, provider_id)
    return {
        "retry_schedule_days": list(row.retry_schedule_days)
        if row
        else list(DEFAULT_RETRY_SCHEDULE_DAYS),
        "reconcile_after_minutes": row.reconcile_after_minutes
        if row
        else DEFAULT_RECONCILE_AFTER_MINUTES,
    }


def update_payment_settings(
    session: Session,
    provider_id: str,
    *,
    retry_schedule_days: list[int] | None,
    reconcile_after_minutes: int | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Change the retry schedule (days after each failure) or the reconciler's patience."""
    before = payment_settings(session, provider_id)
    after = dict(before)
    if retry_schedule_days is not None:
        if len(retry_schedule_days) > MAX_RETRIES or any(
            not 1 <= days <= MAX_RETRY_DAYS for days in retry_schedule_days
        ):
            raise InvalidInput(
                f"retry_schedule_days takes at most {MAX_RETRIES} delays of 1 to "
                f"{MAX_RETRY_DAYS} days",
                code="invalid_retry_schedule",
            )
        after["retry_schedule_days"] = list(retry_schedule_days)
    if reconcile_after_minutes is not None:
        if not 1 <= reconcile_after_minutes <= 24 * 60:
            raise InvalidInput(
                "reconcile_after_minutes must be between 1 and 1440", code="invalid_input"
            )
        after["reconcile_after_minutes"] = reconcile_after_minutes
    row = session.get(PaymentSettings, provider_id)
    if row is None:
        row = PaymentSettings(provider_id=provider_id)
        session.add(row)
    row.retry_schedule_days = after["retry_schedule_days"]
    row.reconcile_after_minutes = after["reconcile_after_minutes"]
    row.updated_at = now
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="payments.settings_updated",
        object_type="provider",
        object_id=provider_id,
        before=before,
        after=after,
        now=now,
    )
    return after


# Attempts ---------------------------------------------------------------------------------


def attempts_of(session: Session, invoice_id: str) -> list[PaymentAttempt]:
    return list(
        session.scalars(
            select(PaymentAttempt)
            .where(PaymentAttempt.invoice_id == invoice_id)
            .order_by(PaymentAttempt.attempt_number)
        )
    )


def _next_number(session: Session, invoice_id: str) -> int:
    latest = session.scalar(
        select(func.max(PaymentAttempt.attempt_number)).where(
            PaymentAttempt.invoice_id == invoice_id
        )
    )
    return (latest or 0) + 1


def new_attempt(
    session: Session,
    invoice: Invoice,
    *,
    kind: AttemptKind,
    stripe_account_id: str,
    payment_method: str | None,
    now: datetime,
) -> PaymentAttempt:
    """Record the next attempt with its idempotency key; the caller commits before Stripe."""
    number = _next_number(session, invoice.id)
    attempt = PaymentAttempt(
        id=new_id("pay"),
        provider_id=invoice.provider_id,
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        attempt_number=number,
        kind=kind,
        idempotency_key=f"{invoice.id}:attempt:{number}",
        amount_minor=to_minor(invoice.total, invoice.currency),
        currency=invoice.currency,
        stripe_account_id=stripe_account_id,
        payment_method=payment_method,
        status=AttemptStatus.pending,
        created_at=now,
    )
    session.add(attempt)
    session.flush()
    return attempt


def start_collection(session: Session, invoice: Invoice, *, now: datetime) -> PaymentAttempt | None:
    """Right after issue: record an off-session attempt when the customer has a saved card.

    Without a connected Stripe account, a default payment method or an amount to collect,
    nothing is recorded and the invoice stays open for the customer to pay in the portal.
    The Stripe call itself happens later, in :func:`meterplane.payments.worker.run_due`.
    """
    if invoice.status not in OPEN_FOR_PAYMENT or invoice.total <= 0:
        return None
    account = get_account(session, invoice.provider_id)
    customer = session.get_one(Customer, invoice.customer_id)
    if account is None or not customer.default_payment_method:
        return None
    for attempt in attempts_of(session, invoice.id):
        if attempt.status in LIVE_ATTEMPT:
            return attempt
    return new_attempt(
        session,
        invoice,
        kind=AttemptKind.off_session,
        stripe_account_id=account.stripe_account_id,
        payment_method=customer.default_payment_method,
        now=now,
    )


def record_submission(
    session: Session, attempt: PaymentAttempt, intent: PaymentIntentInfo, *, now: datetime
) -> None:
    """Stripe has the PaymentIntent; its outcome arrives by webhook (or the reconciler)."""
    if attempt.stripe_payment_intent_id is None:
        attempt.stripe_payment_intent_id = intent.id
    attempt.stripe_status = intent.status
    if attempt.status == AttemptStatus.pending:
        attempt.status = AttemptStatus.submitted
        attempt.submitted_at = now


def _lock_invoice(session: Session, attempt: PaymentAttempt) -> Invoice:
    return invoices.get_invoice(session, attempt.provider_id, attempt.invoice_id, lock=True)


def apply_intent(
    session: Session,
    attempt: PaymentAttempt,
    intent: PaymentIntentInfo,
    *,
    source: str,
    now: datetime,
) -> Outcome | None:
    """Bring the attempt (and its invoice) to what Stripe says of its PaymentIntent."""
    if attempt.stripe_payment_intent_id is None:
        attempt.stripe_payment_intent_id = intent.id
    elif attempt.stripe_payment_intent_id != intent.id:
        return None
    attempt.stripe_status = intent.status
    if intent.charge_id:
        attempt.stripe_charge_id = intent.charge_id
    if intent.status == "succeeded":
        return mark_succeeded(session, attempt, source=source, now=now)
    failed_charge = intent.status == "requires_payment_method" and intent.failure_code
    needs_customer = intent.status == "requires_action" and attempt.kind == AttemptKind.off_session
    if failed_charge or needs_customer or intent.status == "canceled":
        code = intent.failure_code or (
            "authentication_required" if needs_customer else intent.status
        )
        return mark_failed(
            session,
            attempt,
            code=code,
            decline_code=intent.decline_code,
            message=intent.failure_message or code,
            source=source,
            now=now,
        )
    return None


def mark_succeeded(
    session: Session, attempt: PaymentAttempt, *, source: str, now: datetime
) -> Outcome | None:
    """The money arrived: the attempt succeeded and an unpaid invoice becomes paid."""
    if attempt.status == AttemptStatus.succeeded:
        return None
    attempt.status = AttemptStatus.succeeded
    attempt.completed_at = attempt.completed_at or now
    attempt.next_retry_at = None
    attempt.outcome_source = source
    invoice = _lock_invoice(session, attempt)
    for other in attempts_of(session, invoice.id):
        other.next_retry_at = None
        if other.id != attempt.id and other.status == AttemptStatus.pending:
            other.status = AttemptStatus.canceled
            other.outcome_source = "superseded"
            other.completed_at = now
    status = InvoiceStatus(invoice.status)
    if status not in OPEN_FOR_PAYMENT and status != InvoiceStatus.uncollectible:
        return None  # paid already, or void: the history shows the extra payment
    invoices.transition(
        session,
        invoice,
        InvoiceStatus.paid,
        actor="system:payments",
        now=now,
        reason=f"payment {attempt.stripe_payment_intent_id} succeeded",
    )
    invoice.paid_at = now
    return _announce(session, invoice, Outcome(invoice.id, "invoice.paid", attempt.id), now)


def mark_failed(
    session: Session,
    attempt: PaymentAttempt,
    *,
    code: str,
    decline_code: str | None,
    message: str,
    source: str,
    now: datetime,
) -> Outcome | None:
    """A charge failed: schedule the next retry, or give up after the last one."""
    if attempt.status in FINAL_ATTEMPT:
        return None  # a late or repeated event never moves an attempt backwards
    attempt.status = AttemptStatus.failed
    attempt.completed_at = now
    attempt.decline_code = decline_code or code
    attempt.failure_reason = message
    attempt.outcome_source = source
    invoice = _lock_invoice(session, attempt)
    latest = max(a.attempt_number for a in attempts_of(session, invoice.id))
    if (
        InvoiceStatus(invoice.status) not in OPEN_FOR_PAYMENT
        or attempt.attempt_number != latest
        or attempt.kind != AttemptKind.off_session
    ):
        return None
    failures = session.scalar(
        select(func.count())
        .select_from(PaymentAttempt)
        .where(
            PaymentAttempt.invoice_id == invoice.id,
            PaymentAttempt.kind == AttemptKind.off_session,
            PaymentAttempt.status == AttemptStatus.failed,
        )
    )
    schedule = payment_settings(session, invoice.provider_id)["retry_schedule_days"]
    reason = f"{attempt.decline_code}: {message}"
    if failures is not None and failures <= len(schedule):
        attempt.next_retry_at = now + timedelta(days=schedule[failures - 1])
        if invoice.status != InvoiceStatus.payment_failed:
            invoices.transition(
                session,
                invoice,
                InvoiceStatus.payment_failed,
                actor="system:payments",
                now=now,
                reason=reason,
            )
        return _announce(
            session,
            invoice,
            Outcome(
                invoice.id, "invoice.payment_failed", attempt.id, reason, attempt.next_retry_at
            ),
            now,
            subject_id=f"{invoice.id}:{attempt.attempt_number}",
        )
    invoices.transition(
        session,
        invoice,
        InvoiceStatus.uncollectible,
        actor="system:payments",
        now=now,
        reason=f"{reason} (retries exhausted after {failures} attempts)",
    )
    return _announce(
        session, invoice, Outcome(invoice.id, "invoice.uncollectible", attempt.id, reason), now
    )


def _announce(
    session: Session,
    invoice: Invoice,
    outcome: Outcome,
    now: datetime,
    *,
    subject_id: str | None = None,
) -> Outcome:
    """Tell the customer (and the provider's webhooks) in the transaction that decided it."""
    notify(
        session,
        invoice.provider_id,
        outcome.event,
        subject_id=subject_id or invoice.id,
        data={
            "invoice_id": invoice.id,
            "number": invoice.number,
            "total": invoice.total,
            "currency": invoice.currency,
            "paid_at": invoice.paid_at,
            "reason": outcome.reason,
            "next_retry_at": outcome.next_retry_at,
        },
        now=now,
    )
    return outcome


def due_retries(session: Session, *, now: datetime) -> list[PaymentAttempt]:
    """Failed attempts whose scheduled retry has come, on invoices still unpaid."""
    return list(
        session.scalars(
            select(PaymentAttempt)
            .join(Invoice, Invoice.id == PaymentAttempt.invoice_id)
            .where(
                PaymentAttempt.status == AttemptStatus.failed,
                PaymentAttempt.next_retry_at <= now,
                Invoice.status.in_(list(OPEN_FOR_PAYMENT)),
            )
            .order_by(PaymentAttempt.next_retry_at, PaymentAttempt.id)
        )
    )


def schedule_retry(
    session: Session, failed: PaymentAttempt, *, now: datetime
) -> PaymentAttempt | None:
    """The next attempt with the customer's current default card (it may have been replaced)."""
    invoice = _lock_invoice(session, failed)
    account = get_account(session, invoice.provider_id)
    customer = session.get_one(Customer, invoice.customer_id)
    if account is None or not customer.default_payment_method:
        return None  # retried once a card or an account is back
    failed.next_retry_at = None
    return new_attempt(
        session,
        invoice,
        kind=AttemptKind.off_session,
        stripe_account_id=account.stripe_account_id,
        payment_method=customer.default_payment_method,
        now=now,
    )


def stale_attempts(session: Session, *, now: datetime) -> list[PaymentAttempt]:
    """Submitted attempts whose outcome has not arrived within the provider's patience."""
    found = []
    patience: dict[str, int] = {}
    for attempt in session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.status == AttemptStatus.submitted)
        .order_by(PaymentAttempt.submitted_at)
    ):
        if attempt.provider_id not in patience:
            patience[attempt.provider_id] = payment_settings(session, attempt.provider_id)[
                "reconcile_after_minutes"
            ]
        minutes = patience[attempt.provider_id]
        if attempt.submitted_at and attempt.submitted_at <= now - timedelta(minutes=minutes):
            found.append(attempt)
    return found


# Refunds ----------------------------------------------------------------------------------


def refunds_of(session: Session, invoice_id: str) -> list[PaymentRefund]:
    return list(
        session.scalars(
            select(PaymentRefund)
            .where(PaymentRefund.invoice_id == invoice_id)
            .order_by(PaymentRefund.refund_number)
        )
    )


def new_refund(
    session: Session,
    provider_id: str,
    invoice_id: str,
    *,
    amount: Decimal | None,
    reason: str | None,
    actor: str,
    now: datetime,
) -> PaymentRefund:
    """Record a refund of a paid invoice (all that is left of it by default)."""
    invoice = invoices.get_invoice(session, provider_id, invoice_id, lock=True)
    paid = [a for a in attempts_of(session, invoice.id) if a.status == AttemptStatus.succeeded]
    if invoice.status != InvoiceStatus.paid or not paid:
        raise Conflict(
            f"invoice {invoice.id} has no payment through Stripe to refund",
            code="not_refundable",
            status=invoice.status,
        )
    attempt = paid[-1]
    refunds = refunds_of(session, invoice.id)
    refunded = sum(r.amount_minor for r in refunds if r.status != RefundStatus.failed)
    left = attempt.amount_minor - refunded
    amount_minor = left if amount is None else to_minor(amount, invoice.currency)
    if amount_minor <= 0 or amount_minor > left:
        raise InvalidInput(
            f"the refund must be more than 0 and at most "
            f"{from_minor(left, invoice.currency)} {invoice.currency}",
            code="invalid_refund_amount",
            refundable=format(from_minor(left, invoice.currency), "f"),
        )
    number = len(refunds) + 1
    refund = PaymentRefund(
        id=new_id("rfd"),
        provider_id=provider_id,
        invoice_id=invoice.id,
        attempt_id=attempt.id,
        refund_number=number,
        idempotency_key=f"{invoice.id}:refund:{number}",
        amount_minor=amount_minor,
        currency=invoice.currency,
        reason=reason,
        status=RefundStatus.pending,
        actor=actor,
        created_at=now,
    )
    session.add(refund)
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="invoice.refund_requested",
        object_type="invoice",
        object_id=invoice.id,
        before=None,
        after={"refund_id": refund.id, "amount_minor": amount_minor},
        now=now,
        reason=reason,
    )
    session.flush()
    return refund


# History ----------------------------------------------------------------------------------


def _money(amount: int, currency: str) -> str:
    return format(from_minor(amount, currency), "f")


def payment_history(session: Session, provider_id: str, invoice_id: str) -> dict[str, Any]:
    """Attempts, amounts, outcomes, Stripe ids and refunds of one invoice."""
    invoice = invoices.get_invoice(session, provider_id, invoice_id)
    attempts = attempts_of(session, invoice.id)
    refunds = refunds_of(session, invoice.id)
    paid = sum(a.amount_minor for a in attempts if a.status == AttemptStatus.succeeded)
    refunded = sum(r.amount_minor for r in refunds if r.status == RefundStatus.succeeded)
    return {
        "invoice_id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": format(invoice.total, "f"),
        "amount_paid": _money(paid, invoice.currency),
        "amount_refunded": _money(refunded, invoice.currency),
        "paid_at": invoice.paid_at,
        "attempts": [
            {
                "id": a.id,
                "attempt_number": a.attempt_number,
                "kind": a.kind,
                "status": a.status,
                "amount": _money(a.amount_minor, a.currency),
                "amount_minor": a.amount_minor,
                "idempotency_key": a.idempotency_key,
                "stripe_account_id": a.stripe_account_id,
                "stripe_payment_intent_id": a.stripe_payment_intent_id,
                "stripe_charge_id": a.stripe_charge_id,
                "stripe_status": a.stripe_status,
                "payment_method": a.payment_method,
                "decline_code": a.decline_code,
                "failure_reason": a.failure_reason,
                "next_retry_at": a.next_retry_at,
                "created_at": a.created_at,
                "submitted_at": a.submitted_at,
                "completed_at": a.completed_at,
                "outcome_source": a.outcome_source,
            }
            for a in attempts
        ],
        "refunds": [
            {
                "id": r.id,
                "status": r.status,
                "amount": _money(r.amount_minor, r.currency),
                "amount_minor": r.amount_minor,
                "stripe_refund_id": r.stripe_refund_id,
                "reason": r.reason,
                "failure_reason": r.failure_reason,
                "actor": r.actor,
                "created_at": r.created_at,
                "completed_at": r.completed_at,
            }
            for r in refunds
        ],
    }


def get_attempt(session: Session, attempt_id: str) -> PaymentAttempt:
    attempt = session.get(PaymentAttempt, attempt_id)
    if attempt is None:
        raise NotFound(f"payment attempt {attempt_id} not found", code="attempt_not_found")
    return attempt
