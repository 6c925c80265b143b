from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from meterplane.kit.decimals import DecimalText
from meterplane.kit.money import PRICE_DECIMALS

Name = Annotated[str, Field(min_length=1, max_length=200)]
UnitPrice = Annotated[
    Decimal, Field(ge=0, decimal_places=PRICE_DECIMALS, max_digits=30, allow_inf_nan=False)
]


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class ServiceOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_id: str
    name: Name
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    prices: dict[str, UnitPrice] = Field(
        description="Unit price per unit-hour, by dimension key (decimal strings)."
    )


class PlanOut(BaseModel):
    id: str
    service_id: str
    name: str
    currency: str
    prices: dict[str, DecimalText]
    created_at: datetime
