from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from meterplane.kit.decimals import DecimalText

Name = Annotated[str, Field(min_length=1, max_length=200)]
OptionalRef = Annotated[str | None, Field(default=None, max_length=200)]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    email: EmailStr
    external_billing_id: OptionalRef = None
    address: Annotated[str | None, Field(max_length=1000)] = None


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    external_billing_id: str | None
    default_payment_method: str | None
    address: str | None
    payment_terms_days: int | None
    tax_rate_id: str | None
    created_at: datetime


class CustomerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_payment_method: Annotated[str | None, Field(max_length=200)] = None
    address: Annotated[str | None, Field(max_length=1000)] = None
    payment_terms_days: Annotated[int | None, Field(ge=0, le=365)] = None
    tax_rate_id: str | None = None


class SubscriptionPricesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prices: dict[str, Any] = Field(examples=[{"cpu_cores": "0.03"}])
    effective_from: AwareDatetime
    effective_to: AwareDatetime | None = None


class SubscriptionPriceOut(BaseModel):
    dimension_key: str = Field(serialization_alias="dimension")
    unit_price: DecimalText
    effective_from: datetime
    effective_to: datetime | None


class ChangePlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: str
    effective_from: AwareDatetime | None = Field(
        default=None, description="A whole hour; default: the start of the next hour."
    )


class PlanPeriodOut(BaseModel):
    plan_id: str
    effective_from: datetime


class AdmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str
    plan_id: str


class AdmissionOut(BaseModel):
    allowed: bool
    code: str | None = None
    message: str | None = None
    limit: int | None = None
    current: int | None = None


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str
    plan_id: str


class SubscriptionOut(BaseModel):
    id: str
    customer_id: str
    plan_id: str
    status: str
    created_at: datetime


class InstanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]
    subscription_id: str
    cloud: Annotated[str, Field(min_length=1, max_length=40)]
    region: Annotated[str, Field(min_length=1, max_length=80)]
    external_billing_id: OptionalRef = None


class InstanceOut(BaseModel):
    id: str
    subscription_id: str
    customer_id: str
    cloud: str
    region: str
    external_billing_id: str | None
    plan_id: str
    plan_history: list[PlanPeriodOut]
    status: str
    created_at: datetime
    terminated_at: datetime | None
