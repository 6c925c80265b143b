from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, BigIntPK, ExactDecimal, UTCDateTime, enum_column


class SubscriptionStatus(StrEnum):
    active = "active"
    cancelled = "cancelled"


class InstanceStatus(StrEnum):
    running = "running"
    terminated = "terminated"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    external_billing_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The customer's default payment method (a Stripe PaymentMethod id once payments land);
    # what the ``require_payment_method`` quota checks.
    default_payment_method: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Overrides the provider's payment terms when set.
    payment_terms_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tax_rate_id: Mapped[str | None] = mapped_column(ForeignKey("tax_rates.id"), nullable=True)
    # Babel locale of the customer's emails: dates and money formats.
    locale: Mapped[str] = mapped_column(String(20), default="en_US", server_default="en_US")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    status: Mapped[SubscriptionStatus] = mapped_column(enum_column(SubscriptionStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Instance(Base):
    """A customer's dedicated deployment, known by the provider's own identifier ``id``."""

    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("provider_id", "id"),)

    # Compact surrogate key: usage tables hold millions of rows that point here.
    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    id: Mapped[str] = mapped_column(String(200))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    # Denormalised from the subscription (whose customer never changes) for usage queries.
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    # The plan in force now; the full history, which billing uses, is InstancePlanPeriod.
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    cloud: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(80))
    external_billing_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[InstanceStatus] = mapped_column(enum_column(InstanceStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InstancePlanPeriod(Base):
    """From ``effective_from`` (an hour) until the next period, the instance is on ``plan_id``."""

    __tablename__ = "instance_plan_periods"
    __table_args__ = (UniqueConstraint("instance_pk", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    instance_pk: Mapped[int] = mapped_column(ForeignKey("instances.pk"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubscriptionPrice(Base):
    """A negotiated unit price for one subscription and dimension, in force on [from, to)."""

    __tablename__ = "subscription_prices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    dimension_key: Mapped[str] = mapped_column(String(64))
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
