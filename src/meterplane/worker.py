"""The schedule: monthly close after the grace period, auto-approval, past-due marking, and
delivery of the notifications outbox.

Every step is idempotent, so running the worker twice (or two workers) changes nothing more.
"""

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.export import worker as export_worker
from meterplane.invoicing import close as closing
from meterplane.invoicing import service as invoices
from meterplane.invoicing.periods import period_bounds, previous_period
from meterplane.kit.db import transaction
from meterplane.kit.errors import MeterplaneError
from meterplane.notifications import worker as notifications
from meterplane.notifications.smtp import MailTransport, transport_from_settings
from meterplane.payments import worker as payments_worker
from meterplane.payments.errors import StripeNotConfigured
from meterplane.payments.gateway import StripeGateway
from meterplane.settings import Settings, get_settings
from meterplane.tenancy.models import Provider

log = logging.getLogger("meterplane.worker")


@dataclass
class WorkerReport:
    closed: list[str] = field(default_factory=list)
    drafted: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    past_due: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notifications: dict[str, int] = field(default_factory=dict)
    payments: dict[str, Any] | None = None
    export: dict[str, Any] = field(default_factory=dict)


def run_once(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    transport: MailTransport | None = None,
    http_client: httpx.Client | None = None,
) -> WorkerReport:
    """One pass over every provider, then the outbox (SMTP and HTTP from settings by default)."""
    report = WorkerReport()
    with transaction(factory) as session:
        providers = list(session.scalars(select(Provider).order_by(Provider.id)))
    for provider in providers:
        _close_or_draft(factory, provider, now, report)
        notifications.notify_auto_approve_soon(factory, provider, now=now)
        _auto_approve(factory, provider, now, report)
        with transaction(factory) as session:
            overdue = invoices.mark_past_due(session, provider.id, now=now)
            report.past_due += [invoice.id for invoice in overdue]
    settings = get_settings()
    report.payments = _collect_payments(factory, settings, now)
    exported = export_worker.run_due(factory, now=now, settings=settings)
    report.export = {
        "hours_exported": exported.hours_exported,
        "revisions": exported.revisions,
        "records": exported.records,
        "errors": exported.errors,
    }
    with ExitStack() as stack:
        if http_client is None:
            http_client = stack.enter_context(httpx.Client())
        counts = notifications.deliver_due(
            factory,
            now=now,
            transport=transport or transport_from_settings(settings),
            http_client=http_client,
            settings=settings,
        )
    report.notifications = counts.as_dict()
    return report


def _close_or_draft(
    factory: sessionmaker[Session], provider: Provider, now: datetime, report: WorkerReport
) -> None:
    period = previous_period(now)
    _start, end = period_bounds(period)
    if end <= provider.created_at:
        return
    try:
        if now >= end + timedelta(hours=provider.close_grace_hours):
            result = closing.close_period(factory, provider.id, period, now=now)
            if not result.already_closed:
                report.closed.append(f"{provider.id}:{period}")
        else:
            closing.draft_period(factory, provider.id, period, now=now)
            report.drafted.append(f"{provider.id}:{period}")
    except MeterplaneError as exc:
        log.warning("close of %s for %s failed: %s", period, provider.id, exc.message)
        report.errors.append(f"{provider.id}:{period}: {exc.code}")


def _auto_approve(
    factory: sessionmaker[Session], provider: Provider, now: datetime, report: WorkerReport
) -> None:
    with transaction(factory) as session:
        due = invoices.due_for_auto_approval(session, provider, now=now)
    for invoice_id in due:
        try:
            with transaction(factory) as session:
                invoices.approve(
                    session,
                    provider.id,
                    invoice_id,
                    actor="system:auto_approve",
                    now=now,
                    reason=f"auto-approved after {provider.auto_approve_after_days} days",
                )
            report.approved.append(invoice_id)
        except MeterplaneError as exc:
            # Approved by a person (or another worker) in the meantime: nothing to do.
            report.errors.append(f"{invoice_id}: {exc.code}")


def _collect_payments(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> dict[str, Any] | None:
    """Stripe calls, webhook events, retries and reconciliation; skipped without Stripe keys."""
    try:
        gateway = StripeGateway(settings)
    except StripeNotConfigured:
        return None
    return payments_worker.run_due(factory, now=now, gateway=gateway).as_dict()
