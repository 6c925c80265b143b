from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from meterplane.notifications.models import Channel, OutboxStatus


class BillingEmailsIn(BaseModel):
    emails: list[str] | None = Field(
        default=None, description="Extra billing emails; the customer's primary email stays."
    )
    locale: str | None = Field(default=None, description="Babel locale, e.g. en_US or de_DE.")


class BillingEmailsOut(BaseModel):
    customer_id: str
    primary: str
    emails: list[str]
    all: list[str]
    locale: str


class WebhookEndpointIn(BaseModel):
    url: str = Field(max_length=2000)
    events: list[str] = Field(min_length=1)


class WebhookEndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="Shown once: keep it to verify Meterplane-Signature.")


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int


class OutboxMessageOut(BaseModel):
    id: int
    event: str
    subject_id: str
    channel: Channel
    recipient: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    address_failing: bool = False


class DeliveryOut(OutboxMessageOut):
    log: list[AttemptOut]


class FailingAddressOut(BaseModel):
    address: str
    reason: str
    failed_at: datetime
    message_id: int | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
