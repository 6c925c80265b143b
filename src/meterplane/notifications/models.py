"""The outbox, provider webhook endpoints, extra billing emails and failing addresses."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, BigIntPK, UTCDateTime, enum_column


class Channel(StrEnum):
    email = "email"
    webhook = "webhook"


class OutboxStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at (also while a worker holds its lease)
    sent = "sent"  # accepted by the SMTP server / answered 2xx by the endpoint
    failed = "failed"  # permanent failure or attempts exhausted; retry by hand


class OutboxMessage(Base):
    """One message to one recipient, written in the transaction of the change that causes it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_provider_status", "provider_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    # f"{event}:{subject_id}:{channel}:{recipient}": the same event never yields two rows.
    dedup_key: Mapped[str] = mapped_column(String(700), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    # An email address, or the webhook endpoint's id.
    recipient: Mapped[str] = mapped_column(String(320))
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id"), nullable=True, index=True
    )
    customer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Email: the event data and locale (rendered at send time); webhook: the JSON event.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutboxAttempt(Base):
    """The delivery log: one row per try."""

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))  # "sent", "retry", "failed"
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Kept in clear: signing needs it (shown to the provider once, at creation).
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BillingEmail(Base):
    """A customer's billing address besides its primary ``Customer.email``."""

    __tablename__ = "customer_billing_emails"
    __table_args__ = (UniqueConstraint("customer_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FailingAddress(Base):
    """An address the mail server refused permanently: no more mail until the provider retries."""

    __tablename__ = "failing_email_addresses"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
