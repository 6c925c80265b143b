"""Outbox delivery, run by the worker: due emails over SMTP, due webhooks over HTTP.

Exactly-once in effect: a row is marked sent only after the SMTP server accepted the message
(or the endpoint answered 2xx), in a commit of its own right after the send. A crash in the
window between the two (the send returned, the commit did not happen) sends the message once
more when the lease runs out; it then carries the same Message-ID (email) or event id and
``Meterplane-Event-Id`` header (webhook), derived from the dedup key, so receivers can drop it.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import transaction
from meterplane.notifications import outbox
from meterplane.notifications.emails import build_email
from meterplane.notifications.models import Channel, OutboxMessage, OutboxStatus, WebhookEndpoint
from meterplane.notifications.service import notify
from meterplane.notifications.smtp import MailTransport, PermanentMailError, TransientMailError
from meterplane.notifications.webhooks import post_event
from meterplane.settings import Settings, get_settings
from meterplane.tenancy.models import Provider

log = logging.getLogger("meterplane.notifications")
BATCH_SIZE = 100
MAX_BATCHES = 20
_warned_no_smtp = False


@dataclass
class DeliveryCounts:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0  # emails kept pending because no SMTP server is configured

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def deliver_due(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    transport: MailTransport | None,
    http_client: httpx.Client,
    settings: Settings | None = None,
    batch_size: int = BATCH_SIZE,
) -> DeliveryCounts:
    """Send every due outbox message once; failures are rescheduled with backoff."""
    settings = settings or get_settings()
    counts = DeliveryCounts()
    channels = [Channel.webhook] if transport is None else [Channel.webhook, Channel.email]
    if transport is None:
        counts.held = _held_emails(factory, now)
        _warn_no_smtp(counts.held)
    for _ in range(MAX_BATCHES):
        with transaction(factory) as session:
            claimed = [
                (row.id, row.channel)
                for row in outbox.claim_due(session, now=now, channels=channels, limit=batch_size)
            ]
        for message_id, channel in claimed:
            if channel == Channel.email:
                assert transport is not None
                outcome = _deliver_email(factory, message_id, transport, settings, now)
            else:
                outcome = _deliver_webhook(factory, message_id, http_client, now)
            if outcome == "sent":
                counts.sent += 1
            elif outcome == "retry":
                counts.retried += 1
            else:
                counts.failed += 1
        if len(claimed) < batch_size:
            break
    return counts


def _held_emails(factory: sessionmaker[Session], now: datetime) -> int:
    with transaction(factory) as session:
        return (
            session.scalar(
                select(func.count()).where(
                    OutboxMessage.channel == Channel.email,
                    OutboxMessage.status == OutboxStatus.pending,
                    OutboxMessage.next_attempt_at <= now,
                )
            )
            or 0
        )


def _warn_no_smtp(held: int) -> None:
    global _warned_no_smtp
    if held and not _warned_no_smtp:
        _warned_no_smtp = True
        log.warning(
            "METERPLANE_SMTP_HOST is not set: %d email(s) stay pending in the outbox "
            "until an SMTP server is configured",
            held,
        )


def _deliver_email(
    factory: sessionmaker[Session],
    message_id: int,
    transport: MailTransport,
    settings: Settings,
    now: datetime,
) -> str:
    with transaction(factory) as session:
        row = session.get_one(OutboxMessage, message_id)
        failing = outbox.failing_address(session, row.provider_id, row.recipient)
        if failing is not None:
            return outbox.record_failure(
                session,
                message_id,
                f"address marked failing since {failing.failed_at.isoformat()}: {failing.reason}",
                now=now,
                permanent=True,
            )
        try:
            message: EmailMessage | None = build_email(session, row, settings=settings, now=now)
            render_error = None
        except Exception as exc:  # a bug or missing data: keep the row, retry, show the error
            log.exception("rendering outbox message %s failed", message_id)
            message, render_error = None, f"rendering failed: {type(exc).__name__}: {exc}"
    if message is None:
        with transaction(factory) as session:
            return outbox.record_failure(
                session, message_id, str(render_error), now=now, permanent=False
            )
    started = time.monotonic()
    try:
        transport.send(message)
    except (PermanentMailError, TransientMailError) as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        with transaction(factory) as session:
            return outbox.record_failure(
                session,
                message_id,
                exc.message,
                now=now,
                permanent=isinstance(exc, PermanentMailError),
                status_code=exc.code,
                duration_ms=elapsed,
            )
    # The crash window: accepted by the server, not yet recorded. Kept to this one commit.
    elapsed = int((time.monotonic() - started) * 1000)
    with transaction(factory) as session:
        outbox.record_sent(session, message_id, now=now, duration_ms=elapsed)
    return "sent"


def _deliver_webhook(
    factory: sessionmaker[Session], message_id: int, client: httpx.Client, now: datetime
) -> str:
    with transaction(factory) as session:
        row = session.get_one(OutboxMessage, message_id)
        endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row.endpoint_id else None
        if endpoint is None or endpoint.deleted_at is not None:
            return outbox.record_failure(
                session, message_id, "endpoint deleted", now=now, permanent=True
            )
        url, secret, payload = endpoint.url, endpoint.secret, row.payload
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    started = time.monotonic()
    result = post_event(client, url, secret, body, event_id=str(payload.get("id")), now=now)
    elapsed = int((time.monotonic() - started) * 1000)
    with transaction(factory) as session:
        if result.ok:
            outbox.record_sent(
                session, message_id, now=now, status_code=result.status_code, duration_ms=elapsed
            )
            return "sent"
        return outbox.record_failure(
            session,
            message_id,
            result.error or "delivery failed",
            now=now,
            permanent=False,
            status_code=result.status_code,
            duration_ms=elapsed,
        )


def notify_auto_approve_soon(
    factory: sessionmaker[Session], provider: Provider, *, now: datetime
) -> int:
    """Tell the provider, once per period, that frozen drafts get approved within a day."""
    days = provider.auto_approve_after_days
    if days is None:
        return 0
    window_start = now - timedelta(days=days)  # approved from here on: not "soon" any more
    window_end = now - timedelta(days=max(days - 1, 0))
    notified = 0
    with transaction(factory) as session:
        rows = session.execute(
            select(Invoice.period, Invoice.currency, Invoice.total, Invoice.frozen_at).where(
                Invoice.provider_id == provider.id,
                Invoice.status == InvoiceStatus.pending_approval,
                Invoice.frozen_at > window_start,
                Invoice.frozen_at <= window_end,
            )
        ).all()
        periods: dict[str, list[tuple[str, Decimal, datetime]]] = {}
        for period, currency, total, frozen_at in rows:
            assert frozen_at is not None  # pending approval implies frozen
            periods.setdefault(period, []).append((currency, total, frozen_at))
        for period, items in sorted(periods.items()):
            totals: dict[str, Decimal] = {}
            for currency, total, _ in items:
                totals[currency] = totals.get(currency, Decimal(0)) + total
            first = min(frozen_at for _, _, frozen_at in items)
            single = next(iter(totals)) if len(totals) == 1 else None
            notify(
                session,
                provider.id,
                "drafts.auto_approve_soon",
                subject_id=f"{provider.id}:{period}",
                data={
                    "period": period,
                    "count": len(items),
                    "total": totals[single] if single else None,
                    "currency": single,
                    "totals": totals,
                    "auto_approve_at": first + timedelta(days=days),
                },
                now=now,
            )
            notified += 1
    return notified
