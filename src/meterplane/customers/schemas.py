from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
OptionalRef = Annotated[str | None, Field(default=None, max_length=200)]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    email: EmailStr
    external_billing_id: OptionalRef = None


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    external_billing_id: str | None
    created_at: datetime


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
    status: str
    created_at: datetime
    terminated_at: datetime | None
