"""Incremental rollups: node intervals → instance intervals → hourly usage (DESIGN rules 1–4).

Preset dimensions live in wide tables (one column each); a provider's custom dimensions in
long tables (one row per dimension), maintained the same way by ``apply_custom_maxima``.

Callers hold a lock on every instance they touch (see ``ingest``), so recomputing an
interval from its node rows sees every committed node and nothing half-written.

This is the ingest hot path, so rows go to the driver as plain tuples or arrays: a batch
has only a few distinct intervals, whose column values are converted once each with the
column type's own bind processor (``UTCDateTime``), so storage is byte-for-byte what the
ORM would write.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from meterplane.kit.db import UTCDateTime
from meterplane.kit.quantity import QUANTITY_SCALE

NodeKey = tuple[int, str, datetime]
NodeValues = list[int]
# Custom dimensions: (instance_pk, node_id, interval_start, dimension_id) → one value.
CustomKey = tuple[int, str, datetime, int]

# PostgreSQL: one statement merges the batch's node maxima, passed as arrays. Integer arrays
# travel as array literals (``{1,2,3}``), far cheaper to send than lists of Python ints;
# moments travel as whole epoch seconds and become timestamptz by exact interval arithmetic.
_PG_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
_PG_UPSERT_NODES = f"""
INSERT INTO usage_node_intervals
    (instance_pk, interval_start, node_id, provider_id, hour_start,
     cpu_cores, memory_gib, storage_gib)
SELECT r.instance_pk, {_PG_EPOCH} + r.epoch * INTERVAL '1 second', r.node_id,
       %(provider_id)s, {_PG_EPOCH} + (r.epoch - r.epoch %% 3600) * INTERVAL '1 second',
       r.cpu_cores, r.memory_gib, r.storage_gib
FROM unnest(%(instance_pk)s::bigint[], %(epoch)s::bigint[], %(node_id)s::text[],
            %(cpu_cores)s::bigint[], %(memory_gib)s::bigint[], %(storage_gib)s::bigint[])
     AS r(instance_pk, epoch, node_id, cpu_cores, memory_gib, storage_gib)
ON CONFLICT (instance_pk, interval_start, node_id) DO UPDATE SET
    cpu_cores = GREATEST(usage_node_intervals.cpu_cores, excluded.cpu_cores),
    memory_gib = GREATEST(usage_node_intervals.memory_gib, excluded.memory_gib),
    storage_gib = GREATEST(usage_node_intervals.storage_gib, excluded.storage_gib)
"""

# PostgreSQL: recompute the touched intervals from all their nodes, then raise their hours
# from the recomputed rows (RETURNING), in one statement. The LATERAL subquery reads each
# touched interval through the primary key, whatever the table statistics say.
# Interval values only ever grow (node values merge by max, nodes are only added), so the
# hour's max over all its intervals is the old hourly value or a touched interval's value.
_PG_RECOMPUTE_AND_RAISE = f"""
WITH touched AS (
    SELECT DISTINCT t.instance_pk, {_PG_EPOCH} + t.epoch * INTERVAL '1 second' AS interval_start
    FROM unnest(%(touched_pk)s::bigint[], %(touched_epoch)s::bigint[]) AS t(instance_pk, epoch)
), intervals AS (
    INSERT INTO usage_intervals
        (instance_pk, interval_start, provider_id, hour_start,
         cpu_cores, memory_gib, storage_gib, replicas)
    SELECT t.instance_pk, t.interval_start, s.provider_id, s.hour_start,
           s.cpu_cores, s.memory_gib, s.storage_gib, s.replicas
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT MIN(n.provider_id) AS provider_id, MIN(n.hour_start) AS hour_start,
               SUM(n.cpu_cores) AS cpu_cores, SUM(n.memory_gib) AS memory_gib,
               SUM(n.storage_gib) AS storage_gib, COUNT(*) * {QUANTITY_SCALE} AS replicas
        FROM usage_node_intervals n
        WHERE n.instance_pk = t.instance_pk AND n.interval_start = t.interval_start
          AND n.provider_id = %(provider_id)s
        GROUP BY n.instance_pk, n.interval_start
    ) s
    ON CONFLICT (instance_pk, interval_start) DO UPDATE SET
        cpu_cores = excluded.cpu_cores, memory_gib = excluded.memory_gib,
        storage_gib = excluded.storage_gib, replicas = excluded.replicas
    RETURNING instance_pk, hour_start, provider_id, cpu_cores, memory_gib, storage_gib, replicas
)
INSERT INTO usage_hourly
    (instance_pk, hour_start, provider_id, cpu_cores, memory_gib, storage_gib, replicas)
SELECT i.instance_pk, i.hour_start, MIN(i.provider_id),
       MAX(i.cpu_cores), MAX(i.memory_gib), MAX(i.storage_gib), MAX(i.replicas)
FROM intervals i
GROUP BY i.instance_pk, i.hour_start
ON CONFLICT (instance_pk, hour_start) DO UPDATE SET
    cpu_cores = GREATEST(usage_hourly.cpu_cores, excluded.cpu_cores),
    memory_gib = GREATEST(usage_hourly.memory_gib, excluded.memory_gib),
    storage_gib = GREATEST(usage_hourly.storage_gib, excluded.storage_gib),
    replicas = GREATEST(usage_hourly.replicas, excluded.replicas)
"""

# SQLite: rows through executemany, touched intervals through a per-connection temp table.
# CROSS JOIN makes SQLite loop over the touched keys and search the usage tables by primary
# key; left to itself, without table statistics, it scans the whole usage table instead.
_SQLITE_UPSERT_NODES = """
INSERT INTO usage_node_intervals
    (instance_pk, interval_start, node_id, provider_id, hour_start,
     cpu_cores, memory_gib, storage_gib)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (instance_pk, interval_start, node_id) DO UPDATE SET
    cpu_cores = MAX(usage_node_intervals.cpu_cores, excluded.cpu_cores),
    memory_gib = MAX(usage_node_intervals.memory_gib, excluded.memory_gib),
    storage_gib = MAX(usage_node_intervals.storage_gib, excluded.storage_gib)
"""

# Per-connection scratch table naming the intervals a batch touched; never in migrations.
_SQLITE_CREATE_TOUCHED = """
CREATE TEMPORARY TABLE IF NOT EXISTS ingest_touched_intervals (
    instance_pk INTEGER NOT NULL,
    interval_start DATETIME NOT NULL,
    PRIMARY KEY (instance_pk, interval_start)
)
"""
_SQLITE_CLEAR_TOUCHED = "DELETE FROM ingest_touched_intervals"
_SQLITE_MARK_TOUCHED = "INSERT INTO ingest_touched_intervals VALUES (?, ?)"

_SQLITE_RECOMPUTE_INTERVALS = f"""
INSERT INTO usage_intervals
    (instance_pk, interval_start, provider_id, hour_start,
     cpu_cores, memory_gib, storage_gib, replicas)
SELECT n.instance_pk, n.interval_start, MIN(n.provider_id), MIN(n.hour_start),
       SUM(n.cpu_cores), SUM(n.memory_gib), SUM(n.storage_gib), COUNT(*) * {QUANTITY_SCALE}
FROM ingest_touched_intervals t
CROSS JOIN usage_node_intervals n
  ON n.instance_pk = t.instance_pk AND n.interval_start = t.interval_start
WHERE n.provider_id = ?
GROUP BY t.instance_pk, t.interval_start
ON CONFLICT (instance_pk, interval_start) DO UPDATE SET
    cpu_cores = excluded.cpu_cores, memory_gib = excluded.memory_gib,
    storage_gib = excluded.storage_gib, replicas = excluded.replicas
"""

_SQLITE_RAISE_HOURLY = """
INSERT INTO usage_hourly
    (instance_pk, hour_start, provider_id, cpu_cores, memory_gib, storage_gib, replicas)
SELECT i.instance_pk, i.hour_start, MIN(i.provider_id),
       MAX(i.cpu_cores), MAX(i.memory_gib), MAX(i.storage_gib), MAX(i.replicas)
FROM ingest_touched_intervals t
CROSS JOIN usage_intervals i
  ON i.instance_pk = t.instance_pk AND i.interval_start = t.interval_start
WHERE i.provider_id = ?
GROUP BY i.instance_pk, i.hour_start
ON CONFLICT (instance_pk, hour_start) DO UPDATE SET
    cpu_cores = MAX(usage_hourly.cpu_cores, excluded.cpu_cores),
    memory_gib = MAX(usage_hourly.memory_gib, excluded.memory_gib),
    storage_gib = MAX(usage_hourly.storage_gib, excluded.storage_gib),
    replicas = MAX(usage_hourly.replicas, excluded.replicas)
"""

_utc_datetime = UTCDateTime()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def apply_node_maxima(
    connection: Connection,
    provider_id: str,
    node_maxima: dict[NodeKey, NodeValues],
    hour_of: dict[datetime, datetime],
) -> None:
    """Merge per-node interval maxima into storage and bring both rollups up to date."""
    if not node_maxima:
        return
    if connection.dialect.name == "postgresql":
        _apply_postgresql(connection, provider_id, node_maxima)
    else:
        _apply_sqlite(connection, provider_id, node_maxima, hour_of)


def _int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _apply_postgresql(
    connection: Connection, provider_id: str, node_maxima: dict[NodeKey, NodeValues]
) -> None:
    # Few distinct intervals per batch: convert each one once; intervals are whole seconds.
    epochs: dict[datetime, int] = {}
    for _pk, _node, interval in node_maxima:
        if interval not in epochs:
            if interval.tzinfo is None or interval.microsecond:
                raise ValueError(f"not an interval start: {interval!r}")
            epochs[interval] = (interval - _EPOCH) // _SECOND
    keys = sorted(node_maxima)  # primary-key order
    touched = sorted({(pk, epochs[interval]) for pk, _node, interval in keys})
    connection.exec_driver_sql(
        _PG_UPSERT_NODES,
        {
            "provider_id": provider_id,
            "instance_pk": _int_array(pk for pk, _node, _interval in keys),
            "epoch": _int_array(epochs[interval] for _pk, _node, interval in keys),
            "node_id": [node for _pk, node, _interval in keys],
            "cpu_cores": _int_array(node_maxima[key][0] for key in keys),
            "memory_gib": _int_array(node_maxima[key][1] for key in keys),
            "storage_gib": _int_array(node_maxima[key][2] for key in keys),
        },
    )
    connection.exec_driver_sql(
        _PG_RECOMPUTE_AND_RAISE,
        {
            "provider_id": provider_id,
            "touched_pk": _int_array(pk for pk, _epoch in touched),
            "touched_epoch": _int_array(epoch for _pk, epoch in touched),
        },
    )


def _apply_sqlite(
    connection: Connection,
    provider_id: str,
    node_maxima: dict[NodeKey, NodeValues],
    hour_of: dict[datetime, datetime],
) -> None:
    # Few distinct intervals per batch: convert each one once, as UTCDateTime would.
    dialect = connection.dialect
    bind = _utc_datetime.dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    bound = {interval: (bind(interval), bind(hour)) for interval, hour in hour_of.items()}
    rows = []
    touched: set[tuple[int, Any]] = set()
    for (pk, node, interval), values in node_maxima.items():
        interval_value, hour_value = bound[interval]
        rows.append(
            (pk, interval_value, node, provider_id, hour_value, values[0], values[1], values[2])
        )
        touched.add((pk, interval_value))
    rows.sort()  # primary-key order: each index page is visited once
    connection.exec_driver_sql(_SQLITE_UPSERT_NODES, rows)
    connection.exec_driver_sql(_SQLITE_CREATE_TOUCHED)
    connection.exec_driver_sql(_SQLITE_CLEAR_TOUCHED)
    connection.exec_driver_sql(_SQLITE_MARK_TOUCHED, sorted(touched))
    connection.exec_driver_sql(_SQLITE_RECOMPUTE_INTERVALS, (provider_id,))
    connection.exec_driver_sql(_SQLITE_RAISE_HOURLY, (provider_id,))
    connection.exec_driver_sql(_SQLITE_CLEAR_TOUCHED)


# Custom dimensions, in long format (one row per dimension), by the same rules and the same
# two-step maintenance as the preset columns above; run only for batches carrying custom values.
# Only the touched (instance, interval, dimension) keys are recomputed and raised.
_PG_UPSERT_CUSTOM_NODES = f"""
INSERT INTO usage_node_intervals_custom
    (instance_pk, interval_start, dimension_id, node_id, provider_id, hour_start, value)
SELECT r.instance_pk, {_PG_EPOCH} + r.epoch * INTERVAL '1 second', r.dimension_id, r.node_id,
       %(provider_id)s, {_PG_EPOCH} + (r.epoch - r.epoch %% 3600) * INTERVAL '1 second', r.value
FROM unnest(%(instance_pk)s::bigint[], %(epoch)s::bigint[], %(dimension_id)s::integer[],
            %(node_id)s::text[], %(value)s::bigint[])
     AS r(instance_pk, epoch, dimension_id, node_id, value)
ON CONFLICT (instance_pk, interval_start, dimension_id, node_id) DO UPDATE SET
    value = GREATEST(usage_node_intervals_custom.value, excluded.value)
"""

_PG_RECOMPUTE_AND_RAISE_CUSTOM = f"""
WITH touched AS (
    SELECT DISTINCT t.instance_pk, {_PG_EPOCH} + t.epoch * INTERVAL '1 second' AS interval_start,
           t.dimension_id
    FROM unnest(%(touched_pk)s::bigint[], %(touched_epoch)s::bigint[],
                %(touched_dimension)s::integer[]) AS t(instance_pk, epoch, dimension_id)
), intervals AS (
    INSERT INTO usage_intervals_custom
        (instance_pk, interval_start, dimension_id, provider_id, hour_start, value)
    SELECT t.instance_pk, t.interval_start, t.dimension_id, s.provider_id, s.hour_start, s.value
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT MIN(n.provider_id) AS provider_id, MIN(n.hour_start) AS hour_start,
               SUM(n.value) AS value
        FROM usage_node_intervals_custom n
        WHERE n.instance_pk = t.instance_pk AND n.interval_start = t.interval_start
          AND n.dimension_id = t.dimension_id AND n.provider_id = %(provider_id)s
        GROUP BY n.instance_pk, n.interval_start, n.dimension_id
    ) s
    ON CONFLICT (instance_pk, interval_start, dimension_id) DO UPDATE SET value = excluded.value
    RETURNING instance_pk, hour_start, dimension_id, provider_id, value
)
INSERT INTO usage_hourly_custom (instance_pk, hour_start, dimension_id, provider_id, value)
SELECT i.instance_pk, i.hour_start, i.dimension_id, MIN(i.provider_id), MAX(i.value)
FROM intervals i
GROUP BY i.instance_pk, i.hour_start, i.dimension_id
ON CONFLICT (instance_pk, hour_start, dimension_id) DO UPDATE SET
    value = GREATEST(usage_hourly_custom.value, excluded.value)
"""

_SQLITE_UPSERT_CUSTOM_NODES = """
INSERT INTO usage_node_intervals_custom
    (instance_pk, interval_start, dimension_id, node_id, provider_id, hour_start, value)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (instance_pk, interval_start, dimension_id, node_id) DO UPDATE SET
    value = MAX(usage_node_intervals_custom.value, excluded.value)
"""

_SQLITE_CREATE_TOUCHED_CUSTOM = """
CREATE TEMPORARY TABLE IF NOT EXISTS ingest_touched_custom (
    instance_pk INTEGER NOT NULL,
    interval_start DATETIME NOT NULL,
    dimension_id INTEGER NOT NULL,
    PRIMARY KEY (instance_pk, interval_start, dimension_id)
)
"""
_SQLITE_CLEAR_TOUCHED_CUSTOM = "DELETE FROM ingest_touched_custom"
_SQLITE_MARK_TOUCHED_CUSTOM = "INSERT INTO ingest_touched_custom VALUES (?, ?, ?)"

_SQLITE_RECOMPUTE_CUSTOM_INTERVALS = """
INSERT INTO usage_intervals_custom
    (instance_pk, interval_start, dimension_id, provider_id, hour_start, value)
SELECT n.instance_pk, n.interval_start, n.dimension_id, MIN(n.provider_id), MIN(n.hour_start),
       SUM(n.value)
FROM ingest_touched_custom t
CROSS JOIN usage_node_intervals_custom n
  ON n.instance_pk = t.instance_pk AND n.interval_start = t.interval_start
 AND n.dimension_id = t.dimension_id
WHERE n.provider_id = ?
GROUP BY t.instance_pk, t.interval_start, t.dimension_id
ON CONFLICT (instance_pk, interval_start, dimension_id) DO UPDATE SET value = excluded.value
"""

_SQLITE_RAISE_CUSTOM_HOURLY = """
INSERT INTO usage_hourly_custom (instance_pk, hour_start, dimension_id, provider_id, value)
SELECT i.instance_pk, i.hour_start, i.dimension_id, MIN(i.provider_id), MAX(i.value)
FROM ingest_touched_custom t
CROSS JOIN usage_intervals_custom i
  ON i.instance_pk = t.instance_pk AND i.interval_start = t.interval_start
 AND i.dimension_id = t.dimension_id
WHERE i.provider_id = ?
GROUP BY i.instance_pk, i.hour_start, i.dimension_id
ON CONFLICT (instance_pk, hour_start, dimension_id) DO UPDATE SET
    value = MAX(usage_hourly_custom.value, excluded.value)
"""


def apply_custom_maxima(
    connection: Connection,
    provider_id: str,
    custom_maxima: dict[CustomKey, int],
    hour_of: dict[datetime, datetime],
) -> None:
    """Merge per-node interval maxima of custom dimensions and bring their rollups up to date.

    Same locking assumption as ``apply_node_maxima``: the caller holds every touched instance.
    """
    if not custom_maxima:
        return
    if connection.dialect.name == "postgresql":
        _apply_custom_postgresql(connection, provider_id, custom_maxima)
    else:
        _apply_custom_sqlite(connection, provider_id, custom_maxima, hour_of)


def _apply_custom_postgresql(
    connection: Connection, provider_id: str, custom_maxima: dict[CustomKey, int]
) -> None:
    epochs: dict[datetime, int] = {}
    for _pk, _node, interval, _dimension in custom_maxima:
        if interval not in epochs:
            if interval.tzinfo is None or interval.microsecond:
                raise ValueError(f"not an interval start: {interval!r}")
            epochs[interval] = (interval - _EPOCH) // _SECOND
    # Primary-key order: instance, interval, dimension, node.
    keys = sorted(custom_maxima, key=lambda k: (k[0], k[2], k[3], k[1]))
    touched = sorted({(pk, epochs[interval], dim) for pk, _node, interval, dim in keys})
    connection.exec_driver_sql(
        _PG_UPSERT_CUSTOM_NODES,
        {
            "provider_id": provider_id,
            "instance_pk": _int_array(k[0] for k in keys),
            "epoch": _int_array(epochs[k[2]] for k in keys),
            "dimension_id": _int_array(k[3] for k in keys),
            "node_id": [k[1] for k in keys],
            "value": _int_array(custom_maxima[k] for k in keys),
        },
    )
    connection.exec_driver_sql(
        _PG_RECOMPUTE_AND_RAISE_CUSTOM,
        {
            "provider_id": provider_id,
            "touched_pk": _int_array(t[0] for t in touched),
            "touched_epoch": _int_array(t[1] for t in touched),
            "touched_dimension": _int_array(t[2] for t in touched),
        },
    )


def _apply_custom_sqlite(
    connection: Connection,
    provider_id: str,
    custom_maxima: dict[CustomKey, int],
    hour_of: dict[datetime, datetime],
) -> None:
    dialect = connection.dialect
    bind = _utc_datetime.dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    bound = {interval: (bind(interval), bind(hour)) for interval, hour in hour_of.items()}
    rows = []
    touched: set[tuple[int, Any, int]] = set()
    for (pk, node, interval, dimension_id), value in custom_maxima.items():
        interval_value, hour_value = bound[interval]
        rows.append((pk, interval_value, dimension_id, node, provider_id, hour_value, value))
        touched.add((pk, interval_value, dimension_id))
    rows.sort()  # primary-key order
    connection.exec_driver_sql(_SQLITE_UPSERT_CUSTOM_NODES, rows)
    connection.exec_driver_sql(_SQLITE_CREATE_TOUCHED_CUSTOM)
    connection.exec_driver_sql(_SQLITE_CLEAR_TOUCHED_CUSTOM)
    connection.exec_driver_sql(_SQLITE_MARK_TOUCHED_CUSTOM, sorted(touched))
    connection.exec_driver_sql(_SQLITE_RECOMPUTE_CUSTOM_INTERVALS, (provider_id,))
    connection.exec_driver_sql(_SQLITE_RAISE_CUSTOM_HOURLY, (provider_id,))
    connection.exec_driver_sql(_SQLITE_CLEAR_TOUCHED_CUSTOM)
