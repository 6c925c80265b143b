from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, UTCDateTime, enum_column

DEFAULT_RETRY_SCHEDULE_DAYS = [3, 5, 7]
DEFAULT_RECONCILE_AFTER_MINUTES = 30


class AttemptKind(StrEnum):
    off_session = "off_session"  # charged by Meterplane with the saved default payment method
    portal = "portal"  # confirmed by the customer with a card in the portal


class AttemptStatus(StrEnum):
    pending = "pending"  # committed; the Stripe call is due, or its outcome was lost in a crash
    submitted = "submitted"  # PaymentIntent created and confirmed; waiting for the outcome
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"  # superseded: the invoice was settled or voided otherwise


FINAL_ATTEMPT = frozenset({AttemptStatus.succeeded, AttemptStatus.failed, AttemptStatus.canceled})


class RefundStatus(StrEnum):
    pending = "pending"  # committed; the Stripe call is due
    succeeded = "succeeded"
    failed = "failed"


class ProviderStripeAccount(Base):
    """The provider's Standard account connected through Stripe Connect OAuth."""

    __tablename__ = "provider_stripe_accounts"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(100), index=True)
    livemode: Mapped[bool] = mapped_column(default=False)
    scope: Mapped[str | None] = mapped_column(String(40), nullable=True)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set by a disconnect or the ``account.application.deauthorized`` webhook.
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disconnect_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PaymentSettings(Base):
    """Per-provider collection settings; absent row → the defaults."""

    __tablename__ = "payment_settings"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    # Days to wait after each failed charge before the next retry; after the last, uncollectible.
    retry_schedule_days: Mapped[list[int]] = mapped_column(JSON)
    # An attempt without an outcome this long after its Stripe call is checked with Stripe.
    reconcile_after_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StripeCustomer(Base):
    """Our customer's twin on one connected account (created when first needed)."""

    __tablename__ = "stripe_customers"
    __table_args__ = (UniqueConstraint("stripe_account_id", "stripe_customer_id"),)

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentAttempt(Base):
    """One try at collecting an invoice: committed before Stripe is called, keyed for replays."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("invoice_id", "attempt_number"),
        Index("ix_payment_attempts_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    attempt_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[AttemptKind] = mapped_column(enum_column(AttemptKind))
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stripe_account_id: Mapped[str] = mapped_column(String(100))
    payment_method: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[AttemptStatus] = mapped_column(enum_column(AttemptStatus))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(100), nullable=True, unique=True
    )
    stripe_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decline_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set on a failed off-session attempt when the schedule allows another try.
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # How the outcome became known: "webhook:<event id>", "reconciler", "superseded".
    outcome_source: Mapped[str | None] = mapped_column(String(120), nullable=True)


class PaymentRefund(Base):
    __tablename__ = "payment_refunds"
    __table_args__ = (UniqueConstraint("invoice_id", "refund_number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("payment_attempts.id"))
    refund_number: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StripeEvent(Base):
    """The webhook inbox: stored first by Stripe's event id, processed later by the worker."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    stripe_account_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    stripe_created: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
