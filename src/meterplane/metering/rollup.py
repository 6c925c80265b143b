"""Incremental rollups: node intervals → instance intervals → hourly usage (DESIGN rules 1–4).

Callers hold a lock on every instance they touch (see ``ingest``), so recomputing an
interval from its node rows sees every committed node and nothing half-written.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, Column, MetaData, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable

from meterplane.kit.db import UTCDateTime
from meterplane.kit.quantity import QUANTITY_SCALE
from meterplane.metering.models import NodeIntervalUsage

# Per-connection scratch table naming the intervals a batch touched; never in migrations.
_scratch = MetaData()
touched_intervals = Table(
    "ingest_touched_intervals",
    _scratch,
    Column("instance_pk", BigInteger, nullable=False),
    Column("interval_start", UTCDateTime(), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)

NodeKey = tuple[int, str, datetime]
NodeValues = list[int]

_NODE_COLUMNS = ("cpu_cores", "memory_gib", "storage_gib")

_RECOMPUTE_INTERVALS = f"""
INSERT INTO usage_intervals
    (instance_pk, interval_start, provider_id, hour_start,
     cpu_cores, memory_gib, storage_gib, replicas)
SELECT n.instance_pk, n.interval_start, MIN(n.provider_id), MIN(n.hour_start),
       SUM(n.cpu_cores), SUM(n.memory_gib), SUM(n.storage_gib), COUNT(*) * {QUANTITY_SCALE}
FROM usage_node_intervals n
JOIN ingest_touched_intervals t
  ON t.instance_pk = n.instance_pk AND t.interval_start = n.interval_start
WHERE true
GROUP BY n.instance_pk, n.interval_start
ON CONFLICT (instance_pk, interval_start) DO UPDATE SET
    cpu_cores = excluded.cpu_cores, memory_gib = excluded.memory_gib,
    storage_gib = excluded.storage_gib, replicas = excluded.replicas
"""

# Interval values only ever grow (node values merge by max, nodes are only added), so the
# hour's max over all its intervals is the old hourly value or a touched interval's value.
_RAISE_HOURLY = """
INSERT INTO usage_hourly
    (instance_pk, hour_start, provider_id, cpu_cores, memory_gib, storage_gib, replicas)
SELECT i.instance_pk, i.hour_start, MIN(i.provider_id),
       MAX(i.cpu_cores), MAX(i.memory_gib), MAX(i.storage_gib), MAX(i.replicas)
FROM usage_intervals i
JOIN ingest_touched_intervals t
  ON t.instance_pk = i.instance_pk AND t.interval_start = i.interval_start
WHERE true
GROUP BY i.instance_pk, i.hour_start
ON CONFLICT (instance_pk, hour_start) DO UPDATE SET
    cpu_cores = {greatest}(usage_hourly.cpu_cores, excluded.cpu_cores),
    memory_gib = {greatest}(usage_hourly.memory_gib, excluded.memory_gib),
    storage_gib = {greatest}(usage_hourly.storage_gib, excluded.storage_gib),
    replicas = {greatest}(usage_hourly.replicas, excluded.replicas)
"""


def _upsert_nodes_statement(dialect_name: str) -> Executable:
    table = NodeIntervalUsage.__table__
    greatest = "GREATEST" if dialect_name == "postgresql" else "MAX"
    stmt = (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)  # type: ignore[arg-type]
    return stmt.on_conflict_do_update(
        index_elements=["instance_pk", "interval_start", "node_id"],
        set_={
            name: text(f"{greatest}(usage_node_intervals.{name}, excluded.{name})")
            for name in _NODE_COLUMNS
        },
    )


def apply_node_maxima(
    connection: Connection,
    provider_id: str,
    node_maxima: dict[NodeKey, NodeValues],
    hour_of: dict[datetime, datetime],
) -> None:
    """Merge per-node interval maxima into storage and bring both rollups up to date."""
    if not node_maxima:
        return
    dialect_name = connection.dialect.name
    connection.execute(
        _upsert_nodes_statement(dialect_name),
        [
            {
                "instance_pk": pk,
                "interval_start": interval,
                "node_id": node,
                "provider_id": provider_id,
                "hour_start": hour_of[interval],
                "cpu_cores": values[0],
                "memory_gib": values[1],
                "storage_gib": values[2],
            }
            for (pk, node, interval), values in node_maxima.items()
        ],
    )
    _mark_touched(connection, {(pk, interval) for pk, _node, interval in node_maxima})
    connection.execute(text(_RECOMPUTE_INTERVALS))
    greatest = "GREATEST" if dialect_name == "postgresql" else "MAX"
    connection.execute(text(_RAISE_HOURLY.format(greatest=greatest)))
    connection.execute(touched_intervals.delete())


def _mark_touched(connection: Connection, keys: Iterable[tuple[int, datetime]]) -> None:
    touched_intervals.create(connection, checkfirst=True)
    connection.execute(touched_intervals.delete())
    connection.execute(
        touched_intervals.insert(),
        [{"instance_pk": pk, "interval_start": interval} for pk, interval in keys],
    )
