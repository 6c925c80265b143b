from datetime import datetime

from pydantic import BaseModel

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
