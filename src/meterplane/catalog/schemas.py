from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from meterplane.catalog.models import PriceScope
from meterplane.kit.decimals import DecimalText

Name = Annotated[str, Field(min_length=1, max_length=200)]
# Prices arrive as given and are checked by the service, which answers with a specific code
# (negative_price, too_many_decimals, unknown_dimension, invalid_price).
RawPrices = Annotated[
    dict[str, Any],
    Field(
        description="Unit price per unit-hour by dimension key, as decimal strings.",
        examples=[{"cpu_cores": "0.04", "memory_gib": "0.005"}],
    ),
]
Quota = Annotated[int | None, Field(ge=0, description="null = unlimited")]


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    integrations: list[str] = Field(default_factory=list, examples=[["meterplaneMetering"]])


class ServicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    integrations: list[str]


class ServiceOut(BaseModel):
    id: str
    name: str
    integrations: list[str]
    created_at: datetime


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_id: str
    name: Name
    currency: Annotated[str, Field(min_length=1, max_length=8)]
    prices: RawPrices
    max_instances_per_customer: Quota = None
    require_payment_method: bool = False


class PlanPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    max_instances_per_customer: Quota = None
    require_payment_method: bool | None = None


class PriceVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prices: RawPrices
    effective_from: AwareDatetime = Field(description="A whole hour, e.g. 2026-12-01T00:00:00Z")
    applies_to: PriceScope = Field(
        default=PriceScope.all_subscriptions,
        description="'all', or 'new_subscriptions' to keep existing subscriptions on their "
        "current price (grandfathering).",
    )


class PriceVersionOut(BaseModel):
    dimension: str
    unit_price: DecimalText
    effective_from: datetime
    applies_to: PriceScope


class PlanOut(BaseModel):
    id: str
    service_id: str
    name: str
    currency: str
    prices: dict[str, DecimalText] = Field(
        description="Unit prices in force now for a new subscription."
    )
    price_versions: list[PriceVersionOut]
    max_instances_per_customer: int | None
    require_payment_method: bool
    created_at: datetime


class DimensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")]
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    display_name: Annotated[str | None, Field(max_length=100)] = None


class DimensionOut(BaseModel):
    key: str
    unit: str
    display_name: str
    preset: bool


class AuditEntryOut(BaseModel):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    at: datetime
