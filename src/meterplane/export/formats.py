"""Record files: CSV (default), JSON Lines or Parquet, optionally gzip; the Omnistrate JSON arrays.

Quantities and prices stay exact: decimal strings in CSV and JSON Lines, DECIMAL columns in
Parquet, and exact JSON number literals in the Omnistrate layout.
"""

import csv
import gzip
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, localcontext

import pyarrow as pa
import pyarrow.parquet as pq

from meterplane.export.records import ExportContext, UsageRecord

COLUMNS: tuple[str, ...] = (
    "provider_id",
    "service_id",
    "service_name",
    "plan_id",
    "plan_name",
    "customer_id",
    "subscription_id",
    "external_billing_id",
    "instance_id",
    "cloud",
    "region",
    "dimension",
    "unit",
    "hour_start",
    "quantity",
    "unit_price",
    "currency",
)
CONTENT_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal_text(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _as_strings(record: UsageRecord, hour_text: dict[datetime, str]) -> list[str]:
    hour = hour_text.get(record.hour_start)
    if hour is None:
        hour = hour_text[record.hour_start] = rfc3339(record.hour_start)
    values: list[str] = list(record[:13])
    values += [hour, format(record.quantity, "f")]
    values += [_decimal_text(record.unit_price), record.currency]
    return values


def encode(records: list[UsageRecord], fmt: str, *, use_gzip: bool) -> bytes:
    if fmt == "parquet":
        return _parquet(records, "gzip" if use_gzip else "snappy")
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        hours: dict[datetime, str] = {}
        writer.writerows(_as_strings(r, hours) for r in records)
        body = text.getvalue().encode()
    else:
        hours = {}
        body = "".join(
            json.dumps(dict(zip(COLUMNS, _as_strings(r, hours), strict=True))) + "\n"
            for r in records
        ).encode()
    # mtime=0: the same records always make the same bytes.
    return gzip.compress(body, mtime=0) if use_gzip else body


_PARQUET_SCHEMA = pa.schema(
    [
        *(pa.field(name, pa.string(), nullable=False) for name in COLUMNS[:13]),
        pa.field("hour_start", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("quantity", pa.decimal128(38, 9), nullable=False),
        pa.field("unit_price", pa.decimal128(38, 12)),
        pa.field("currency", pa.string(), nullable=False),
    ]
)


def _parquet(records: list[UsageRecord], compression: str) -> bytes:
    columns: list[list[object]] = [[] for _ in COLUMNS]
    for record in records:
        for index, value in enumerate(record):
            columns[index].append(value)
    table = pa.Table.from_arrays(
        [pa.array(values, type=f.type) for values, f in zip(columns, _PARQUET_SCHEMA, strict=True)],
        schema=_PARQUET_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue()


def extension(fmt: str, use_gzip: bool) -> str:
    return fmt + (".gz" if use_gzip and fmt != "parquet" else "")


# Omnistrate layout: its dimension names, GiB converted to bytes.
GIB = 1 << 30
OMNISTRATE_DIMENSIONS: dict[str, tuple[str, int]] = {
    "cpu_cores": ("cpu_core_hours", 1),
    "memory_gib": ("memory_byte_hours", GIB),
    "storage_gib": ("storage_allocated_byte_hours", GIB),
    "replicas": ("replica_hours", 1),
}
OMNISTRATE_FIELDS: tuple[str, ...] = (
    "timestamp",
    "organizationId",
    "organizationName",
    "customerId",
    "customerEmail",
    "subscriptionId",
    "externalPayerId",
    "serviceId",
    "serviceName",
    "serviceEnvironmentId",
    "serviceEnvironmentType",
    "productTierId",
    "productTierName",
    "hostClusterId",
    "cloudProvider",
    "region",
    "customNetworkId",
    "instanceId",
    "podName",
    "instanceType",
    "hostName",
    "dimension",
    "value",
    "pricePerUnit",
)


def _number(value: Decimal) -> str:
    """An exact JSON number literal (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _omnistrate_object(record: UsageRecord, ctx: ExportContext, environment: str) -> str | None:
    mapped = OMNISTRATE_DIMENSIONS.get(record.dimension)
    if mapped is None:
        return None  # custom dimensions have no Omnistrate name (docs/export.md)
    name, factor = mapped
    with localcontext() as exact:
        exact.prec = 80
        value = record.quantity * factor
        price = (record.unit_price or Decimal(0)) / factor
    strings = {
        "timestamp": rfc3339(record.hour_start),
        "organizationId": record.provider_id,
        "organizationName": ctx.provider_name,
        "customerId": record.customer_id,
        "customerEmail": ctx.customer_email(record.customer_id),
        "subscriptionId": record.subscription_id,
        "externalPayerId": record.external_billing_id,
        "serviceId": record.service_id,
        "serviceName": record.service_name,
        "serviceEnvironmentId": "",
        "serviceEnvironmentType": environment,
        "productTierId": record.plan_id,
        "productTierName": record.plan_name,
        "hostClusterId": "",
        "cloudProvider": record.cloud,
        "region": record.region,
        "customNetworkId": "",
        "instanceId": record.instance_id,
        "podName": "",
        "instanceType": "",
        "hostName": "",
        "dimension": name,
    }
    parts = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in strings.items()]
    parts.append(f'"value":{_number(value)}')
    parts.append(f'"pricePerUnit":{_number(price)}')
    return "{" + ",".join(parts) + "}"


def omnistrate_files(
    records: Iterable[UsageRecord], ctx: ExportContext, environment: str
) -> dict[tuple[str, str, str], bytes]:
    """One JSON array per (service name, plan id, subscription id)."""
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for record in records:
        text = _omnistrate_object(record, ctx, environment)
        if text is not None:
            key = (record.service_name, record.plan_id, record.subscription_id)
            grouped[key].append(text)
    return {key: ("[" + ",".join(items) + "]").encode() for key, items in grouped.items()}
