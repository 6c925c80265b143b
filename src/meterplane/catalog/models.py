from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meterplane.kit.db import Base, ExactDecimal, UTCDateTime


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
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
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal(30, 12))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
