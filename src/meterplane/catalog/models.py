from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meterplane.kit.db import Base, ExactDecimal, UTCDateTime, enum_column


class Dimension(Base):
    """A billable quantity. Presets have no provider; custom ones belong to one provider."""

    __tablename__ = "dimensions"
    __table_args__ = (UniqueConstraint("provider_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("providers.id"), nullable=True)
    key: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(100))


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("provider_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Integrations turned on for the service, e.g. ["meterplaneMetering"].
    integrations: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PriceScope(StrEnum):
    """Which subscriptions a plan price version applies to."""

    all_subscriptions = "all"
    # Grandfathering: subscriptions started before the version keep the earlier price.
    new_subscriptions = "new_subscriptions"


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    max_instances_per_customer: Mapped[int | None] = mapped_column(Integer, nullable=True)
    require_payment_method: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    prices: Mapped[list["PlanPrice"]] = relationship(
        order_by="PlanPrice.dimension_key", lazy="selectin"
    )


class PlanPrice(Base):
    """Unit price per unit-hour of one dimension, in force from ``effective_from``."""

    __tablename__ = "plan_prices"
    __table_args__ = (UniqueConstraint("plan_id", "dimension_key", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    dimension_key: Mapped[str] = mapped_column(String(64))
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    applies_to: Mapped[PriceScope] = mapped_column(
        enum_column(PriceScope), default=PriceScope.all_subscriptions
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
