from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from meterplane.kit.decimals import DecimalText


class LineOut(BaseModel):
    plan_id: str
    plan_name: str
    dimension: str
    unit: str
    quantity: DecimalText
    unit_price: DecimalText
    amount: DecimalText


class InstanceLineOut(BaseModel):
    instance_id: str
    external_billing_id: str | None
    cloud: str
    region: str
    plan_id: str
    dimension: str
    quantity: DecimalText
    unit_price: DecimalText
    amount: DecimalText


class UpcomingInvoiceOut(BaseModel):
    customer_id: str
    currency: str | None
    period_start: datetime
    period_end: datetime
    usage_through: datetime
    lines: list[LineOut]
    instances: list[InstanceLineOut]
    subtotal: DecimalText


class InvoiceLineOut(LineOut):
    kind: str  # "usage", or "adjustment" for late usage of an earlier period
    usage_period: str


class InvoiceOut(BaseModel):
    id: str
    number: str | None
    customer_id: str
    period: str
    period_start: datetime
    period_end: datetime
    status: str
    currency: str
    subtotal: DecimalText
    tax_name: str | None
    tax_percentage: DecimalText | None
    tax_amount: DecimalText
    total: DecimalText
    issued_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    computed_at: datetime
    lines: list[InvoiceLineOut]
    instances: list[InstanceLineOut]


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class BulkApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invoice_ids: list[str] = Field(min_length=1, max_length=1000)


class TaxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    percentage: Decimal = Field(ge=0, le=100, decimal_places=4)
    jurisdiction: str | None = Field(default=None, max_length=100)


class TaxRateOut(BaseModel):
    id: str
    name: str
    percentage: DecimalText
    jurisdiction: str | None


class BillingSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    close_grace_hours: int | None = Field(default=None, ge=0, le=24 * 14)
    auto_approve_after_days: int | None = Field(default=None, ge=0, le=365)
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    invoice_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,20}$")
    invoice_number_format: str | None = Field(default=None, max_length=80)
    zero_usage_policy: Literal["skip", "issue"] | None = None


class BillingSettingsOut(BaseModel):
    close_grace_hours: int
    auto_approve_after_days: int | None
    payment_terms_days: int
    invoice_prefix: str
    invoice_number_format: str
    zero_usage_policy: str
