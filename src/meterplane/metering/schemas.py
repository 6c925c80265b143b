from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from meterplane.kit.decimals import DecimalText
from meterplane.kit.quantity import MAX_SAMPLE_VALUE, QUANTITY_DECIMALS


def _rfc3339_text_only(value: Any) -> Any:
    # Pydantic would also take a bare number as a Unix time; the contract is RFC 3339 text.
    if not isinstance(value, str):
        raise ValueError("timestamp must be an RFC 3339 string with an offset")
    return value


SampleValue = Annotated[
    Decimal,
    Field(ge=0, le=MAX_SAMPLE_VALUE, decimal_places=QUANTITY_DECIMALS, allow_inf_nan=False),
]
SampleTimestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text_only)]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]


# In the published schema: any other key must be one of the provider's custom dimensions
# (GET /v1/dimensions), with the same value rules; ingest refuses any other key per row.
_CUSTOM_VALUES_SCHEMA: dict[str, Any] = {
    "additionalProperties": {
        "description": "the value of one of the provider's custom dimensions (optional)",
        "anyOf": [{"type": "number", "minimum": 0, "maximum": 1_000_000}, {"type": "string"}],
    }
}


class SampleIn(BaseModel):
    """One node's allocated resources at one moment.

    Extra keys carry values of the provider's own custom dimensions (optional per sample);
    this model itself checks only the preset fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_CUSTOM_VALUES_SCHEMA)

    instance_id: Identifier
    node_id: Identifier
    timestamp: SampleTimestamp
    cpu_cores: SampleValue
    memory_gib: SampleValue
    storage_gib: SampleValue


class RejectedRow(BaseModel):
    index: int
    code: str
    message: str


class IngestResult(BaseModel):
    batch_id: str
    accepted: int
    rejected: list[RejectedRow]


class RejectionOut(BaseModel):
    id: int
    batch_id: str
    index: int
    code: str
    message: str
    instance_id: str | None
    payload: Any
    received_at: datetime


class RejectionPage(BaseModel):
    data: list[RejectionOut]
    next_cursor: int | None


Granularity = Literal["hour", "day", "month"]


class UsageBucket(BaseModel):
    start: datetime
    end: datetime
    quantities: dict[str, DecimalText]


class UsageReport(BaseModel):
    customer_id: str | None
    instance_id: str | None
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    granularity: Granularity
    units: dict[str, str]
    data: list[UsageBucket]
    totals: dict[str, DecimalText]
