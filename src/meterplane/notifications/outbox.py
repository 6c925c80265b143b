"""The outbox's life: claiming due rows, recording each try, listing and retrying by hand.

A worker claims due rows in a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
by pushing ``next_attempt_at`` one lease ahead and counting the attempt, then sends each
message outside any transaction and records the outcome in its own commit. A worker that
dies mid-send leaves the row to be claimed again when the lease runs out.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from meterplane.kit.errors import Conflict, NotFound
from meterplane.notifications.models import (
    Channel,
    FailingAddress,
    OutboxAttempt,
    OutboxMessage,
    OutboxStatus,
)

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 10
BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=6)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` tries: 1, 2, 4, 8 … minutes, at most 6 h."""
    delay: timedelta = BASE_DELAY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_DELAY)


def claim_due(
    session: Session, *, now: datetime, channels: Iterable[Channel], limit: int
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due rows to this worker; other workers skip them."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.channel.in_(list(channels)),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + LEASE
    return list(rows)


def _log(
    session: Session,
    row: OutboxMessage,
    outcome: str,
    *,
    now: datetime,
    error: str | None,
    status_code: int | None,
    duration_ms: int,
) -> None:
    session.add(
        OutboxAttempt(
            message_id=row.id,
            provider_id=row.provider_id,
            attempt=row.attempts,
            attempted_at=now,
            outcome=outcome,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )


def record_sent(
    session: Session,
    message_id: int,
    *,
    now: datetime,
    status_code: int | None = None,
    duration_ms: int = 0,
) -> None:
    """The server accepted the message: it is never sent again."""
    row = session.get_one(OutboxMessage, message_id, with_for_update=True)
    row.status = OutboxStatus.sent
    row.sent_at = now
    row.last_error = None
    _log(
        session, row, "sent", now=now, error=None, status_code=status_code, duration_ms=duration_ms
    )


def record_failure(
    session: Session,
    message_id: int,
    error: str,
    *,
    now: datetime,
    permanent: bool,
    status_code: int | None = None,
    duration_ms: int = 0,
) -> str:
    """Retry later with backoff, or give up (permanent error, or attempts exhausted)."""
    row = session.get_one(OutboxMessage, message_id, with_for_update=True)
    row.last_error = error[:2000]
    give_up = permanent or row.attempts >= MAX_ATTEMPTS
    if give_up:
        row.status = OutboxStatus.failed
    else:
        row.next_attempt_at = now + backoff(row.attempts)
    if permanent and row.channel == Channel.email:
        mark_failing(session, row.provider_id, row.recipient, error, now=now, message_id=row.id)
    outcome = "failed" if give_up else "retry"
    _log(
        session,
        row,
        outcome,
        now=now,
        error=error,
        status_code=status_code,
        duration_ms=duration_ms,
    )
    return outcome


def mark_failing(
    session: Session,
    provider_id: str,
    address: str,
    reason: str,
    *,
    now: datetime,
    message_id: int | None = None,
) -> None:
    if session.get(FailingAddress, (provider_id, address)) is None:
        session.add(
            FailingAddress(
                provider_id=provider_id,
                address=address,
                reason=reason[:2000],
                failed_at=now,
                message_id=message_id,
            )
        )


def failing_address(session: Session, provider_id: str, address: str) -> FailingAddress | None:
    return session.get(FailingAddress, (provider_id, address))


def list_failing_addresses(session: Session, provider_id: str) -> Sequence[FailingAddress]:
    """Addresses the mail server refused for good; nothing more is sent to them."""
    return session.scalars(
        select(FailingAddress)
        .where(FailingAddress.provider_id == provider_id)
        .order_by(FailingAddress.failed_at, FailingAddress.address)
    ).all()


def list_messages(
    session: Session,
    provider_id: str,
    *,
    status: OutboxStatus | None = None,
    channel: Channel | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[OutboxMessage]:
    """The provider's outbox, newest first."""
    query = select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    return session.scalars(
        query.order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    ).all()


def get_message(session: Session, provider_id: str, message_id: int) -> OutboxMessage:
    row = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.provider_id == provider_id, OutboxMessage.id == message_id
        )
    )
    if row is None:
        raise NotFound(f"outbox message {message_id} not found", code="outbox_message_not_found")
    return row


def attempts_of(session: Session, message_id: int) -> Sequence[OutboxAttempt]:
    return session.scalars(
        select(OutboxAttempt)
        .where(OutboxAttempt.message_id == message_id)
        .order_by(OutboxAttempt.id)
    ).all()


def retry(session: Session, provider_id: str, message_id: int, *, now: datetime) -> OutboxMessage:
    """Send a failed (or waiting) message again now, with a fresh count of attempts; an email
    address marked failing is cleared, since the provider vouches for it."""
    row = get_message(session, provider_id, message_id)
    if row.status == OutboxStatus.sent:
        raise Conflict(f"outbox message {message_id} was already sent", code="already_sent")
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = now
    if row.channel == Channel.email:
        session.execute(
            delete(FailingAddress).where(
                FailingAddress.provider_id == provider_id, FailingAddress.address == row.recipient
            )
        )
    session.flush()
    return row
