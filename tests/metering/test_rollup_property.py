"""Random sample streams through the API agree with a plain model of DESIGN rules 1–4."""

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Catalogue, Tenant, register_instance
from tests.metering.helpers import hourly, post_samples

WINDOW_START = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
WINDOW_HOURS = 3
DIMS = ("cpu_cores", "memory_gib", "storage_gib")
_counter = itertools.count()

offsets = st.one_of(
    # Exactly on an interval boundary, one microsecond either side, or anywhere.
    st.integers(0, WINDOW_HOURS * 12 - 1).map(lambda i: timedelta(minutes=5 * i)),
    st.integers(1, WINDOW_HOURS * 12 - 1).map(lambda i: timedelta(minutes=5 * i, microseconds=-1)),
    st.integers(0, WINDOW_HOURS * 3600 - 1).map(lambda s: timedelta(seconds=s)),
)


def _tz(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=30 if hours == 5 else 0))


sample_rows = st.fixed_dictionaries(
    {
        "instance": st.integers(0, 1),
        "node": st.sampled_from(["a", "b", "c", "d"]),
        "offset": offsets,
        "zone": st.sampled_from([0, -7, 2, 5]),
        "cpu_cores": st.decimals(0, 64, places=2),
        "memory_gib": st.decimals(0, 512, places=9),
        "storage_gib": st.decimals(0, 4096, places=0),
    }
)


def expected_hourly(rows: list[dict[str, Any]]) -> dict[tuple[int, datetime], dict[str, Decimal]]:
    """The contract, written as plainly as possible."""
    node_max: dict[tuple[int, str, datetime], dict[str, Decimal]] = {}
    for row in rows:
        moment = WINDOW_START + row["offset"]
        interval = moment - timedelta(
            minutes=moment.minute % 5, seconds=moment.second, microseconds=moment.microsecond
        )
        key = (row["instance"], row["node"], interval)
        held = node_max.setdefault(key, dict.fromkeys(DIMS, Decimal(0)))
        for dim in DIMS:
            held[dim] = max(held[dim], row[dim])
    per_interval: dict[tuple[int, datetime], dict[str, Decimal]] = defaultdict(
        lambda: {**dict.fromkeys(DIMS, Decimal(0)), "replicas": Decimal(0)}
    )
    for (instance, _node, interval), vals in node_max.items():
        total = per_interval[(instance, interval)]
        for dim in DIMS:
            total[dim] += vals[dim]
        total["replicas"] += 1
    per_hour: dict[tuple[int, datetime], dict[str, Decimal]] = {}
    for (instance, interval), vals in per_interval.items():
        hour = interval.replace(minute=0)
        held = per_hour.setdefault((instance, hour), dict.fromkeys(vals, Decimal(0)))
        for dim, value in vals.items():
            held[dim] = max(held[dim], value)
    return per_hour


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(sample_rows, min_size=1, max_size=60),
    duplicates=st.lists(st.integers(0, 59), max_size=15),
    seed=st.integers(0, 2**32),
    batches=st.integers(1, 5),
)
def test_stored_hourly_usage_matches_the_model(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    rows: list[dict[str, Any]],
    duplicates: list[int],
    seed: int,
    batches: int,
) -> None:
    run = next(_counter)
    instance_ids = [f"prop-{run}-0", f"prop-{run}-1"]
    for instance_id in instance_ids:
        register_instance(client, tenant, catalogue.subscription_id, instance_id)

    stream = rows + [rows[i] for i in duplicates if i < len(rows)]
    random.Random(seed).shuffle(stream)
    payload = [
        {
            "instance_id": instance_ids[row["instance"]],
            "node_id": row["node"],
            "timestamp": (WINDOW_START + row["offset"]).astimezone(_tz(row["zone"])).isoformat(),
            **{dim: str(row[dim]) for dim in DIMS},
        }
        for row in stream
    ]
    size = -(-len(payload) // batches)
    for start in range(0, len(payload), size):
        result = post_samples(client, tenant, payload[start : start + size])
        assert result["rejected"] == []

    expected = expected_hourly(rows)
    end = WINDOW_START + timedelta(hours=WINDOW_HOURS)
    for index, instance_id in enumerate(instance_ids):
        data = hourly(
            client,
            tenant,
            start=WINDOW_START.isoformat(),
            end=end.isoformat(),
            instance_id=instance_id,
        )
        for bucket in data:
            hour = datetime.fromisoformat(bucket["start"])
            want = expected.get((index, hour))
            got = {dim: Decimal(q) for dim, q in bucket["quantities"].items()}
            if want is None:
                assert all(q == 0 for q in got.values()), (hour, got)
            else:
                assert got == want, (instance_id, hour)
