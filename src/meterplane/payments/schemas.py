from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field


class ConnectOut(BaseModel):
    url: str
    state: str
    expires_at: datetime


class ConnectionOut(BaseModel):
    connected: bool
    stripe_account_id: str | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    disconnect_reason: str | None = None
    can_charge: bool
    reason: str | None = None


class PaymentSettingsIn(BaseModel):
    retry_schedule_days: list[int] | None = Field(default=None, max_length=10)
    reconcile_after_minutes: int | None = None


class PaymentSettingsOut(BaseModel):
    retry_schedule_days: list[int]
    reconcile_after_minutes: int


class DefaultPaymentMethodIn(BaseModel):
    payment_method: str = Field(min_length=3, max_length=200)


class RefundIn(BaseModel):
    amount: Decimal | None = Field(default=None, gt=0, description="Omit for a full refund.")
    reason: str | None = Field(default=None, max_length=500)
