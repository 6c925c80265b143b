from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.db import Base, ExactDecimal, UTCDateTime, enum_column


class BillingPeriod(Base):
    """A provider's month: drafted during the grace for late samples, then closed once."""

    __tablename__ = "billing_periods"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-10"
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TaxRate(Base):
    __tablename__ = "tax_rates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    percentage: Mapped[Decimal] = mapped_column(ExactDecimal())
    jurisdiction: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NumberSequence(Base):
    """The provider's gapless invoice numbers; the row is locked while a number is taken."""

    __tablename__ = "invoice_number_sequences"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("provider_id", "number"),
        # One live invoice per customer and period; a voided one may be replaced.
        Index(
            "uq_invoices_live_customer_period",
            "provider_id",
            "customer_id",
            "period",
            unique=True,
            sqlite_where=text("status != 'void'"),
            postgresql_where=text("status != 'void'"),
        ),
        Index("ix_invoices_provider_status", "provider_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(ExactDecimal())
    tax_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tax_percentage: Mapped[Decimal | None] = mapped_column(ExactDecimal(), nullable=True)
    tax_amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    total: Mapped[Decimal] = mapped_column(ExactDecimal())
    number: Mapped[str | None] = mapped_column(String(60), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Scaled usage totals of the period when the content was computed: lets a later close
    # find customers with late usage without re-rating everyone.
    usage_snapshot: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)

    lines: Mapped[list["InvoiceLine"]] = relationship(
        order_by="InvoiceLine.position", lazy="selectin", cascade="all, delete-orphan"
    )
    instance_lines: Mapped[list["InvoiceInstanceLine"]] = relationship(
        order_by="InvoiceInstanceLine.position", lazy="selectin", cascade="all, delete-orphan"
    )


class InvoiceLine(Base):
    """Usage of one plan × dimension at one unit price, or an adjustment for an earlier period."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # "usage" or "adjustment"
    # The period whose usage the line bills: the invoice's own, or an earlier one for adjustments.
    usage_period: Mapped[str] = mapped_column(String(7))
    plan_id: Mapped[str] = mapped_column(String(40))
    plan_name: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())


class InvoiceInstanceLine(Base):
    """The per-instance breakdown shown under the lines."""

    __tablename__ = "invoice_instance_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    position: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[str] = mapped_column(String(200))
    external_billing_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cloud: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(80))
    plan_id: Mapped[str] = mapped_column(String(40))
    dimension: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
