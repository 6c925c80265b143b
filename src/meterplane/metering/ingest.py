"""Sample ingest: validate each row on its own, keep the good ones, explain the bad ones."""

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NotRequired, TypeVar, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from meterplane.customers.models import Instance
from meterplane.kit.ids import new_id
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.metering.codecs import DecodedBatch
from meterplane.metering.dimensions import SAMPLED_KEYS, custom_dimensions
from meterplane.metering.models import UsageRejection
from meterplane.metering.rollup import (
    CustomKey,
    NodeKey,
    NodeValues,
    apply_custom_maxima,
    apply_node_maxima,
)
from meterplane.metering.schemas import (
    Identifier,
    IngestResult,
    RejectedRow,
    SampleIn,
    SampleTimestamp,
    SampleValue,
)
from meterplane.settings import Settings

_batch_adapter = TypeAdapter(list[SampleIn])
_Row = TypeVar("_Row")

_FIELD_ERROR_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "timezone_aware": "naive_timestamp",
    "greater_than_equal": "negative_value",
    "less_than_equal": "value_too_large",
    "decimal_max_places": "too_many_decimals",
    "decimal_max_digits": "too_many_decimals",
    "decimal_parsing": "invalid_number",
    "decimal_type": "invalid_number",
    "finite_number": "invalid_number",
    "string_too_short": "invalid_identifier",
    "string_too_long": "invalid_identifier",
    "string_type": "invalid_identifier",
}


@dataclass(frozen=True)
class IngestPolicy:
    retention: timedelta = timedelta(days=90)
    future_tolerance: timedelta = timedelta(minutes=10)

    @classmethod
    def from_settings(cls, settings: Settings) -> "IngestPolicy":
        return cls(
            retention=timedelta(days=settings.usage_retention_days),
            future_tolerance=timedelta(seconds=settings.usage_future_tolerance_seconds),
        )


def _code_for(error: Any) -> str:
    loc = error["loc"]
    if len(loc) < 2:
        return "invalid_row"
    field = loc[1]
    if field == "timestamp" and error["type"] not in ("missing", "timezone_aware"):
        return "invalid_timestamp"
    return _FIELD_ERROR_CODES.get(error["type"], "invalid_value")


def _message_for(error: Any, custom_keys: Sequence[str]) -> str:
    loc = error["loc"]
    if len(loc) < 2:
        return "each sample must be a JSON object"
    if error["type"] == "extra_forbidden":
        known = (
            f"this provider's custom dimensions are {', '.join(custom_keys)}"
            if custom_keys
            else "this provider has no custom dimensions"
        )
        return (
            f"{loc[1]}: not a sample field nor a custom dimension of this provider "
            f"(samples carry instance_id, node_id, timestamp, {', '.join(SAMPLED_KEYS)}; "
            f"{known})"
        )
    return f"{loc[1]}: {error['msg']}"


class SampleRow(TypedDict):
    """``SampleIn`` as a plain dict: same fields, same validators, no model object per row."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    instance_id: Identifier
    node_id: Identifier
    timestamp: SampleTimestamp
    cpu_cores: SampleValue
    memory_gib: SampleValue
    storage_gib: SampleValue


_row_adapter = TypeAdapter(list[SampleRow])


def _check_same_contract() -> None:
    # The ingest hot path validates with SampleRow; it must accept and refuse exactly what
    # SampleIn does, so fail at import when the two drift apart.
    rows = TypeAdapter(SampleRow).json_schema()
    model = SampleIn.model_json_schema()
    if list(rows["properties"]) != list(model["properties"]) or any(
        {k: v for k, v in rows["properties"][name].items() if k != "title"}
        != {k: v for k, v in model["properties"][name].items() if k != "title"}
        for name in rows["properties"]
    ):
        raise RuntimeError("metering.ingest.SampleRow no longer matches schemas.SampleIn")


_check_same_contract()


# The functional form, with fields known only at run time (mypy wants literal fields).
_make_typed_dict: Any = TypedDict


@lru_cache(maxsize=256)
def _row_adapter_for(custom_keys: tuple[str, ...]) -> TypeAdapter[list[Any]]:
    """``SampleRow`` plus the provider's custom dimensions as optional keys, same value rules.

    Built once per distinct set of custom keys; without any, the preset adapter itself.
    """
    if not custom_keys:
        return _row_adapter
    fields: dict[str, Any] = dict(get_type_hints(SampleRow, include_extras=True))
    fields.update({key: NotRequired[SampleValue] for key in custom_keys})
    row_type = _make_typed_dict("CustomSampleRow", fields)
    row_type.__pydantic_config__ = ConfigDict(extra="forbid")
    return TypeAdapter(list[row_type])  # type: ignore[valid-type]  # built at run time


def _validate(
    batch: DecodedBatch, adapter: TypeAdapter[list[_Row]], custom_keys: Sequence[str] = ()
) -> tuple[list[tuple[int, _Row]], list[RejectedRow]]:
    rows = batch.rows
    try:
        return list(enumerate(adapter.validate_python(rows))), []
    except ValidationError as exc:
        first_error: dict[int, Any] = {}
        for error in exc.errors(include_url=False):
            first_error.setdefault(int(error["loc"][0]), error)
    premade = {row.index: row for row in batch.undecodable}
    rejected = [
        premade.get(index)
        or RejectedRow(index=index, code=_code_for(error), message=_message_for(error, custom_keys))
        for index, error in sorted(first_error.items())
    ]
    good_indexes = [i for i in range(len(rows)) if i not in first_error]
    parsed = adapter.validate_python([rows[i] for i in good_indexes])
    return list(zip(good_indexes, parsed, strict=True)), rejected


def validate_rows(batch: DecodedBatch) -> tuple[list[tuple[int, SampleIn]], list[RejectedRow]]:
    """Parse all rows at once; only when some fail, set those aside and parse the rest."""
    return _validate(batch, _batch_adapter)


def ingest_samples(
    session: Session,
    provider_id: str,
    batch: DecodedBatch,
    *,
    now: datetime,
    policy: IngestPolicy | None = None,
) -> IngestResult:
    """Accept a batch of samples into hourly usage; rejected rows are stored with their reason."""
    policy = policy or IngestPolicy()
    connection = session.connection()
    custom = custom_dimensions(connection, provider_id)
    custom_keys = tuple(d.key for d in custom)
    valid, rejected = _validate(batch, _row_adapter_for(custom_keys), custom_keys)
    instances = _lock_instances(session, provider_id, {s["instance_id"] for _, s in valid})
    earliest = now - policy.retention
    latest = now + policy.future_tolerance

    node_maxima: dict[NodeKey, NodeValues] = {}
    # Custom values, only for the dimensions a sample carries (absent: no value, see docs).
    custom_maxima: dict[CustomKey, int] = {}
    custom_ids = [(d.key, d.id) for d in custom]
    hour_of: dict[datetime, datetime] = {}
    interval_at: dict[int, datetime] = {}
    scale = QUANTITY_SCALE
    accepted = 0
    for index, sample in valid:
        instance = instances.get(sample["instance_id"])
        if instance is None:
            rejected.append(_reject(index, "unknown_instance", sample))
            continue
        moment = sample["timestamp"]
        if moment > latest:
            rejected.append(_reject(index, "timestamp_in_future", sample))
            continue
        if moment < earliest:
            rejected.append(_reject(index, "timestamp_too_old", sample))
            continue
        pk, terminated_at = instance
        if terminated_at is not None and moment >= terminated_at:
            rejected.append(_reject(index, "instance_terminated", sample))
            continue
        # Exact integer arithmetic on the offset from the epoch (rule 1), cached per interval.
        number = (moment - _EPOCH) // _INTERVAL
        interval = interval_at.get(number)
        if interval is None:
            interval = _EPOCH + number * _INTERVAL
            interval_at[number] = interval
            hour_of[interval] = interval.replace(minute=0)
        # Values have at most QUANTITY_DECIMALS places (validated), so this is exact.
        cpu = int(sample["cpu_cores"] * scale)
        memory = int(sample["memory_gib"] * scale)
        storage = int(sample["storage_gib"] * scale)
        key = (pk, sample["node_id"], interval)
        current = node_maxima.get(key)
        if current is None:
            node_maxima[key] = [cpu, memory, storage]
        else:
            node_maxima[key] = [
                max(current[0], cpu),
                max(current[1], memory),
                max(current[2], storage),
            ]
        if custom_ids:
            _merge_custom(custom_maxima, custom_ids, sample, key)
        accepted += 1

    apply_node_maxima(connection, provider_id, node_maxima, hour_of)
    apply_custom_maxima(connection, provider_id, custom_maxima, hour_of)
    rejected.sort(key=lambda row: row.index)
    batch_id = new_id("batch")
    _store_rejections(session, provider_id, batch_id, batch.rows, rejected, now=now)
    return IngestResult(batch_id=batch_id, accepted=accepted, rejected=rejected)


def _merge_custom(
    custom_maxima: dict[CustomKey, int],
    custom_ids: list[tuple[str, int]],
    sample: Any,
    node_key: NodeKey,
) -> None:
    """Max per node per interval (rule 2) for each custom dimension the sample carries."""
    pk, node, interval = node_key
    for key, dimension_id in custom_ids:
        value = sample.get(key)
        if value is None:
            continue
        scaled = int(value * QUANTITY_SCALE)
        custom_key = (pk, node, interval, dimension_id)
        current = custom_maxima.get(custom_key)
        if current is None or scaled > current:
            custom_maxima[custom_key] = scaled


_REJECTION_MESSAGES = {
    "unknown_instance": "instance {instance_id} is not registered for this provider",
    "timestamp_in_future": "timestamp {timestamp} is more than the allowed tolerance in the future",
    "timestamp_too_old": "timestamp {timestamp} is older than the usage retention window",
    "instance_terminated": "instance {instance_id} was terminated before {timestamp}",
}


def _reject(index: int, code: str, sample: SampleRow) -> RejectedRow:
    message = _REJECTION_MESSAGES[code].format(
        instance_id=sample["instance_id"], timestamp=sample["timestamp"].isoformat()
    )
    return RejectedRow(index=index, code=code, message=message)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVAL = timedelta(minutes=5)


def _lock_instances(
    session: Session, provider_id: str, instance_ids: set[str]
) -> dict[str, tuple[int, datetime | None]]:
    """Look up the batch's instances and lock them in key order, serialising their rollups."""
    if not instance_ids:
        return {}
    rows = session.execute(
        select(Instance.id, Instance.pk, Instance.terminated_at)
        .where(Instance.provider_id == provider_id, Instance.id.in_(sorted(instance_ids)))
        .order_by(Instance.pk)
        .with_for_update()
    )
    return {row.id: (row.pk, row.terminated_at) for row in rows}


def _store_rejections(
    session: Session,
    provider_id: str,
    batch_id: str,
    rows: list[Any],
    rejected: list[RejectedRow],
    *,
    now: datetime,
) -> None:
    if not rejected:
        return
    records = []
    for row in rejected:
        raw = rows[row.index]
        instance_id = raw.get("instance_id") if isinstance(raw, dict) else None
        records.append(
            {
                "provider_id": provider_id,
                "batch_id": batch_id,
                "row_index": row.index,
                "code": row.code,
                "message": row.message,
                "payload": json.dumps(raw, default=_json_default)[:10_000],
                "instance_id": instance_id[:200] if isinstance(instance_id, str) else None,
                "received_at": now,
            }
        )
    session.execute(insert(UsageRejection), records)


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def group_count(rejected: list[RejectedRow]) -> dict[str, int]:
    """How many rows were refused per reason, for summaries."""
    counts: dict[str, int] = defaultdict(int)
    for row in rejected:
        counts[row.code] += 1
    return dict(counts)


def list_rejections(
    session: Session,
    provider_id: str,
    *,
    limit: int,
    before_id: int | None = None,
    code: str | None = None,
    instance_id: str | None = None,
) -> list[UsageRejection]:
    """Newest first, paged by id."""
    query = select(UsageRejection).where(UsageRejection.provider_id == provider_id)
    if before_id is not None:
        query = query.where(UsageRejection.id < before_id)
    if code is not None:
        query = query.where(UsageRejection.code == code)
    if instance_id is not None:
        query = query.where(UsageRejection.instance_id == instance_id)
    return list(session.scalars(query.order_by(UsageRejection.id.desc()).limit(limit)))
