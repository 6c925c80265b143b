"""The payments pass of the worker: webhooks, reconciliation, retries, then due Stripe calls.

Every step is idempotent; a crash anywhere followed by a rerun charges nobody twice.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.kit.db import transaction
from meterplane.kit.errors import MeterplaneError
from meterplane.payments import collection, service, webhooks
from meterplane.payments.gateway import PaymentGateway
from meterplane.payments.models import AttemptStatus, PaymentAttempt
from meterplane.payments.service import Outcome

log = logging.getLogger("meterplane.payments")


@dataclass
class PaymentsReport:
    events: int = 0
    reconciled: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    # What the emails are sent from: invoice.paid, invoice.payment_failed, invoice.uncollectible.
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "reconciled": self.reconciled,
            "retries": self.retries,
            "submitted": self.submitted,
            "refunds": self.refunds,
            "outcomes": [o.as_dict() for o in self.outcomes],
            "errors": self.errors,
        }


def run_due(
    factory: sessionmaker[Session], *, now: datetime, gateway: PaymentGateway
) -> PaymentsReport:
    """One pass over every provider's payments."""
    report = PaymentsReport()
    for _event_id, _result, outcome in webhooks.process_pending(factory, now=now):
        report.events += 1
        if outcome is not None:
            report.outcomes.append(outcome)
    _reconcile(factory, gateway, now, report)
    _retry(factory, now, report)
    _submit(factory, gateway, now, report)
    _refunds(factory, gateway, now, report)
    return report


def _reconcile(
    factory: sessionmaker[Session], gateway: PaymentGateway, now: datetime, report: PaymentsReport
) -> None:
    """Missed webhooks: ask Stripe about attempts whose outcome is overdue."""
    with transaction(factory) as session:
        stale = [
            (a.id, a.stripe_account_id, a.stripe_payment_intent_id)
            for a in service.stale_attempts(session, now=now)
        ]
    for attempt_id, account, intent_id in stale:
        if intent_id is None:
            continue
        try:
            intent = gateway.retrieve_payment_intent(account, intent_id)
        except MeterplaneError as exc:
            report.errors.append(f"reconcile {attempt_id}: {exc.code}")
            continue
        with transaction(factory) as session:
            attempt = service.get_attempt(session, attempt_id)
            outcome = service.apply_intent(session, attempt, intent, source="reconciler", now=now)
        if attempt.status != AttemptStatus.submitted:
            report.reconciled.append(attempt_id)
        if outcome is not None:
            report.outcomes.append(outcome)


def _retry(factory: sessionmaker[Session], now: datetime, report: PaymentsReport) -> None:
    with transaction(factory) as session:
        due = [a.id for a in service.due_retries(session, now=now)]
    for attempt_id in due:
        with transaction(factory) as session:
            failed = service.get_attempt(session, attempt_id)
            if failed.next_retry_at is None:
                continue
            retry = service.schedule_retry(session, failed, now=now)
            if retry is not None:
                report.retries.append(retry.id)


def _submit(
    factory: sessionmaker[Session], gateway: PaymentGateway, now: datetime, report: PaymentsReport
) -> None:
    with transaction(factory) as session:
        pending = list(
            session.scalars(
                select(PaymentAttempt.id)
                .where(PaymentAttempt.status == AttemptStatus.pending)
                .order_by(PaymentAttempt.created_at, PaymentAttempt.id)
            )
        )
    for attempt_id in pending:
        try:
            result = collection.submit_attempt(factory, gateway, attempt_id, now=now)
        except MeterplaneError as exc:
            log.warning("attempt %s not submitted: %s", attempt_id, exc.message)
            report.errors.append(f"submit {attempt_id}: {exc.code}")
            continue
        if result != "skipped":
            report.submitted.append(attempt_id)


def _refunds(
    factory: sessionmaker[Session], gateway: PaymentGateway, now: datetime, report: PaymentsReport
) -> None:
    with transaction(factory) as session:
        pending = collection.pending_refunds(session)
    for refund_id in pending:
        try:
            collection.submit_refund(factory, gateway, refund_id, now=now)
            report.refunds.append(refund_id)
        except MeterplaneError as exc:
            report.errors.append(f"refund {refund_id}: {exc.code}")
