"""A provider's custom dimensions: carried by samples, metered by rules 1–4, queried and billed."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Catalogue, Tenant, build_catalogue, register_instance
from tests.metering.helpers import hourly, post_samples, sample

HOUR = "2026-10-20T10:00:00Z"


def create_dimension(
    client: TestClient, tenant: Tenant, key: str = "gpu_count", unit: str = "GPU"
) -> None:
    response = client.post(
        "/v1/dimensions",
        json={"key": key, "unit": unit, "display_name": key.replace("_", " ")},
        headers=tenant.admin,
    )
    assert response.status_code == 201, response.text


def usage(client: TestClient, tenant: Tenant, **params: str) -> dict[str, Any]:
    response = client.get("/v1/usage", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def instance(client: TestClient, tenant: Tenant, catalogue: Catalogue) -> str:
    create_dimension(client, tenant)
    register_instance(client, tenant, catalogue.subscription_id, "gpu-main")
    return "gpu-main"


def gpu(instance_id: str, timestamp: str, node: str, value: Any, **preset: Any) -> dict[str, Any]:
    row = sample(instance_id, timestamp, node=node, **preset)
    if value is not None:
        row["gpu_count"] = value
    return row


def test_custom_values_follow_the_rollup_rules(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    samples = [
        # 10:00 interval: n1 twice (max 3), n2 once (1.5), n3 without a gpu value.
        gpu(instance, "2026-10-20T10:03:00Z", "n1", 1),
        gpu(instance, "2026-10-20T10:00:00Z", "n1", "3"),
        gpu(instance, "2026-10-20T10:04:59Z", "n2", "1.5"),
        gpu(instance, "2026-10-20T10:01:00Z", "n3", None, cpu=7),
        # 10:05: only n1, bigger alone than 10:00 is not (4 < 4.5).
        gpu(instance, "2026-10-20T10:06:00Z", "n1", 4),
        # 10:30: n1 and n2 together, 2 + 2.75 = 4.75: the hour's max.
        gpu(instance, "2026-10-20T10:31:00Z", "n2", "2.75"),
        gpu(instance, "2026-10-20T10:30:00Z", "n1", 2),
        gpu(instance, "2026-10-20T10:34:00Z", "n1", "0.5"),
        # 11:00: samples, none with gpu_count → no gpu usage in that hour.
        gpu(instance, "2026-10-20T11:10:00Z", "n1", None),
        # 09:00 (sent last, out of order): one node, a zero.
        gpu(instance, "2026-10-20T09:59:59.999Z", "n1", 0),
    ]
    result = post_samples(client, tenant, samples)
    assert result == {**result, "accepted": len(samples), "rejected": []}

    window = {"from": "2026-10-20T09:00:00Z", "to": "2026-10-20T12:00:00Z"}
    report = usage(
        client, tenant, instance_id=instance, granularity="hour", dimension="gpu_count", **window
    )
    assert report["units"] == {"gpu_count": "GPU-hours"}
    assert [(b["start"], b["quantities"]) for b in report["data"]] == [
        ("2026-10-20T09:00:00Z", {"gpu_count": "0"}),
        ("2026-10-20T10:00:00Z", {"gpu_count": "4.75"}),
        ("2026-10-20T11:00:00Z", {"gpu_count": "0"}),
    ]
    assert report["totals"] == {"gpu_count": "4.75"}

    # Presets are untouched by the custom values (n3 counted as a replica, with its cpu).
    everything = usage(client, tenant, instance_id=instance, granularity="hour", **window)
    ten = {b["start"]: b["quantities"] for b in everything["data"]}[HOUR]
    assert ten == {
        "cpu_cores": "11",  # 2 + 2 + 7 at 10:00
        "memory_gib": "24",
        "storage_gib": "300",
        "replicas": "3",
        "gpu_count": "4.75",
    }
    assert everything["units"]["gpu_count"] == "GPU-hours"
    assert everything["units"]["cpu_cores"] == "core-hours"
    assert everything["totals"]["gpu_count"] == "4.75"

    # Idempotent: resending, reordered and one by one, changes nothing.
    post_samples(client, tenant, list(reversed(samples)))
    for row in samples:
        post_samples(client, tenant, [row])
    assert usage(client, tenant, instance_id=instance, granularity="hour", **window) == everything


def test_customer_scope_sums_instances_and_day_buckets_sum_hours(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, instance: str
) -> None:
    register_instance(client, tenant, catalogue.subscription_id, "gpu-two")
    post_samples(
        client,
        tenant,
        [
            gpu(instance, "2026-10-20T08:00:00Z", "n1", 2),
            gpu(instance, "2026-10-20T09:00:00Z", "n1", 2),
            gpu("gpu-two", "2026-10-20T09:20:00Z", "a", "0.25"),
        ],
    )
    report = usage(
        client,
        tenant,
        customer_id=catalogue.customer_id,
        granularity="day",
        dimension="gpu_count",
        **{"from": "2026-10-20T00:00:00Z", "to": "2026-10-21T00:00:00Z"},
    )
    assert report["totals"] == {"gpu_count": "4.25"}


def test_dimension_filter_refuses_keys_the_provider_does_not_have(
    client: TestClient, tenant: Tenant, instance: str, make_tenant: Any
) -> None:
    other = make_tenant("Other Co")
    create_dimension(client, other, "fpga_count", "FPGA")
    for key in ("fpga_count", "nope"):
        response = client.get(
            "/v1/usage",
            params={
                "instance_id": instance,
                "from": "2026-10-20T00:00:00Z",
                "to": "2026-10-21T00:00:00Z",
                "dimension": key,
            },
            headers=tenant.admin,
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "unknown_dimension"


def test_another_providers_dimension_is_an_unknown_field(
    client: TestClient, tenant: Tenant, instance: str, make_tenant: Any
) -> None:
    other = make_tenant("Other Co")
    create_dimension(client, other, "fpga_count", "FPGA")
    bad = {**gpu(instance, "2026-10-20T11:00:00Z", "n1", 1), "fpga_count": 1}
    result = post_samples(client, tenant, [gpu(instance, "2026-10-20T11:00:00Z", "n1", 2), bad])
    assert result["accepted"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, "unknown_field")]
    message = result["rejected"][0]["message"]
    assert "fpga_count" in message and "gpu_count" in message

    # The other provider has no instance here; its own key is fine in its own samples only.
    nothing = post_samples(client, other, [bad])
    assert [r["code"] for r in nothing["rejected"]] == ["unknown_field"]  # gpu_count is not its
    assert "fpga_count" in nothing["rejected"][0]["message"]


def test_provider_without_custom_dimensions_is_told_so(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    register_instance(client, tenant, catalogue.subscription_id, "plain")
    result = post_samples(client, tenant, [gpu("plain", "2026-10-20T11:00:00Z", "n1", 1)])
    assert [r["code"] for r in result["rejected"]] == ["unknown_field"]
    assert "no custom dimensions" in result["rejected"][0]["message"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (-1, "negative_value"),
        ("-0.5", "negative_value"),
        ("lots", "invalid_number"),
        (True, "invalid_number"),
        (None, "invalid_number"),
        ("NaN", "invalid_number"),
        ("Infinity", "invalid_number"),
        ("0.0000000001", "too_many_decimals"),
        ("1000001", "value_too_large"),
    ],
)
def test_bad_custom_values_are_rejected_with_their_code(
    client: TestClient, tenant: Tenant, instance: str, value: Any, code: str
) -> None:
    bad = {**sample(instance, "2026-10-20T11:00:00Z", node="bad"), "gpu_count": value}
    good = gpu(instance, "2026-10-20T11:00:00Z", "n1", "1000000")
    result = post_samples(client, tenant, [good, bad])
    assert result["accepted"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, code)]
    assert result["rejected"][0]["message"].startswith("gpu_count")
    stored = client.get("/v1/usage/rejections", headers=tenant.admin).json()["data"]
    assert [r["code"] for r in stored] == [code]
    rows = hourly(
        client,
        tenant,
        start="2026-10-20T11:00:00Z",
        end="2026-10-20T12:00:00Z",
        instance_id=instance,
    )
    assert rows[0]["quantities"]["gpu_count"] == "1000000"
    assert rows[0]["quantities"]["replicas"] == "1"


def test_exact_decimals_as_json_numbers_and_in_ndjson(
    client: TestClient, tenant: Tenant, instance: str
) -> None:
    body = (
        '{"instance_id": "gpu-main", "node_id": "a", "timestamp": "2026-10-20T11:00:00Z", '
        '"cpu_cores": 1, "memory_gib": 1, "storage_gib": 1, "gpu_count": 0.1}\n'
        '{"instance_id": "gpu-main", "node_id": "b", "timestamp": "2026-10-20T11:00:00Z", '
        '"cpu_cores": 1, "memory_gib": 1, "storage_gib": 1, "gpu_count": 0.200000001}\n'
    )
    response = client.post(
        "/v1/usage/samples",
        content=body.encode(),
        headers={**tenant.ingest, "Content-Type": "application/x-ndjson"},
    )
    assert response.json()["accepted"] == 2
    rows = hourly(
        client,
        tenant,
        start="2026-10-20T11:00:00Z",
        end="2026-10-20T12:00:00Z",
        instance_id=instance,
    )
    assert rows[0]["quantities"]["gpu_count"] == "0.300000001"


def test_a_plan_price_for_the_custom_dimension_bills_it(
    client: TestClient, tenant: Tenant, catalogue: Catalogue
) -> None:
    create_dimension(client, tenant)
    service = client.post("/v1/services", json={"name": "GPU db"}, headers=tenant.admin).json()
    plan = client.post(
        "/v1/plans",
        json={
            "service_id": service["id"],
            "name": "GPU",
            "currency": "USD",
            "prices": {"cpu_cores": "0.04", "gpu_count": "0.85"},
        },
        headers=tenant.admin,
    )
    assert plan.status_code == 201, plan.text
    subscription = client.post(
        "/v1/subscriptions",
        json={"customer_id": catalogue.customer_id, "plan_id": plan.json()["id"]},
        headers=tenant.admin,
    ).json()
    register_instance(client, tenant, subscription["id"], "trainer")
    # The catalogue's Standard plan has no gpu price: its instance's gpu usage is not billed.
    register_instance(client, tenant, catalogue.subscription_id, "unpriced")
    samples = [
        gpu("trainer", "2026-10-20T08:10:00Z", "n1", 2, cpu=4),
        gpu("trainer", "2026-10-20T08:10:00Z", "n2", 2, cpu=4),
        gpu("trainer", "2026-10-20T09:10:00Z", "n1", "1.5", cpu=4),
        gpu("trainer", "2026-10-20T10:10:00Z", "n1", None, cpu=4),
        gpu("unpriced", "2026-10-20T09:10:00Z", "n1", 8, cpu=1, memory=0, storage=0),
    ]
    assert post_samples(client, tenant, samples)["rejected"] == []

    response = client.get(
        f"/v1/customers/{catalogue.customer_id}/upcoming-invoice", headers=tenant.admin
    )
    assert response.status_code == 200, response.text
    invoice = response.json()
    lines = {(line["plan_name"], line["dimension"]): line for line in invoice["lines"]}
    gpu_line = lines[("GPU", "gpu_count")]
    assert gpu_line["unit"] == "GPU"
    assert Decimal(gpu_line["quantity"]) == Decimal("5.5")  # 4 + 1.5 + nothing at 10:00
    assert Decimal(gpu_line["unit_price"]) == Decimal("0.85")
    assert Decimal(gpu_line["amount"]) == Decimal("4.68")  # 4.675 rounded half-up
    assert Decimal(lines[("GPU", "cpu_cores")]["quantity"]) == 8 + 4 + 4
    assert ("Standard", "gpu_count") not in lines
    assert [line["dimension"] for line in invoice["lines"] if line["plan_name"] == "GPU"] == [
        "cpu_cores",
        "gpu_count",
    ]
    per_instance = [i for i in invoice["instances"] if i["dimension"] == "gpu_count"]
    assert [(i["instance_id"], Decimal(i["quantity"])) for i in per_instance] == [
        ("trainer", Decimal("5.5"))
    ]
    assert Decimal(invoice["subtotal"]) == sum(Decimal(line["amount"]) for line in lines.values())


# Random streams with the custom value present or absent per sample, against a plain model.
WINDOW_START = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
WINDOW_HOURS = 2
_runs = iter(range(10**6))

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "node": st.sampled_from(["a", "b", "c"]),
            "seconds": st.integers(0, WINDOW_HOURS * 3600 - 1),
            "gpu_count": st.one_of(st.none(), st.decimals(0, 8, places=3)),
            "tpu_count": st.one_of(st.none(), st.integers(0, 4)),
        }
    ),
    min_size=1,
    max_size=40,
)


def _model(rows: list[dict[str, Any]], dim: str) -> dict[datetime, Decimal]:
    node_max: dict[tuple[str, datetime], Decimal] = {}
    for row in rows:
        if row[dim] is None:
            continue
        moment = WINDOW_START + timedelta(seconds=row["seconds"])
        interval = moment.replace(minute=moment.minute - moment.minute % 5, second=0)
        key = (row["node"], interval)
        node_max[key] = max(node_max.get(key, Decimal(0)), Decimal(row[dim]))
    per_interval: dict[datetime, Decimal] = defaultdict(Decimal)
    for (_node, interval), value in node_max.items():
        per_interval[interval] += value
    per_hour: dict[datetime, Decimal] = {}
    for interval, value in per_interval.items():
        hour = interval.replace(minute=0)
        per_hour[hour] = max(per_hour.get(hour, Decimal(0)), value)
    return per_hour


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, seed=st.integers(0, 2**32), batches=st.integers(1, 4))
def test_random_streams_match_the_model(
    client: TestClient,
    tenant: Tenant,
    catalogue: Catalogue,
    rows: list[dict[str, Any]],
    seed: int,
    batches: int,
) -> None:
    run = next(_runs)
    if not _has_dimensions(client, tenant):
        create_dimension(client, tenant, "gpu_count", "GPU")
        create_dimension(client, tenant, "tpu_count", "TPU")
    instance_id = f"rand-{run}"
    register_instance(client, tenant, catalogue.subscription_id, instance_id)
    stream = rows + rows[: len(rows) // 3]  # some duplicates
    random.Random(seed).shuffle(stream)
    payload = []
    for row in stream:
        body = sample(
            instance_id, WINDOW_START + timedelta(seconds=row["seconds"]), node=row["node"]
        )
        if row["gpu_count"] is not None:
            body["gpu_count"] = str(row["gpu_count"])
        if row["tpu_count"] is not None:
            body["tpu_count"] = row["tpu_count"]
        payload.append(body)
    size = -(-len(payload) // batches)
    for start in range(0, len(payload), size):
        assert post_samples(client, tenant, payload[start : start + size])["rejected"] == []

    data = hourly(
        client,
        tenant,
        start=WINDOW_START.isoformat(),
        end=(WINDOW_START + timedelta(hours=WINDOW_HOURS)).isoformat(),
        instance_id=instance_id,
    )
    for dim in ("gpu_count", "tpu_count"):
        want = _model(rows, dim)
        got = {datetime.fromisoformat(b["start"]): Decimal(b["quantities"][dim]) for b in data}
        assert got == {hour: want.get(hour, Decimal(0)) for hour in got}, dim


def _has_dimensions(client: TestClient, tenant: Tenant) -> bool:
    listed = client.get("/v1/dimensions", headers=tenant.admin).json()["data"]
    return any(d["key"] == "gpu_count" for d in listed)


def test_other_providers_usage_never_shows(
    client: TestClient, tenant: Tenant, catalogue: Catalogue, instance: str, make_tenant: Any
) -> None:
    other = make_tenant("Other Co")
    create_dimension(client, other, "gpu_count", "GPU")  # same key, its own dimension
    other_catalogue = build_catalogue(client, other, suffix="-o")
    register_instance(client, other, other_catalogue.subscription_id, "theirs")
    post_samples(client, other, [gpu("theirs", "2026-10-20T10:00:00Z", "n1", 50)])
    post_samples(client, tenant, [gpu(instance, "2026-10-20T10:00:00Z", "n1", 1)])
    mine = usage(
        client,
        tenant,
        customer_id=catalogue.customer_id,
        dimension="gpu_count",
        **{"from": "2026-10-20T00:00:00Z", "to": "2026-10-21T00:00:00Z"},
    )
    assert mine["totals"] == {"gpu_count": "1"}
    theirs = usage(
        client,
        other,
        customer_id=other_catalogue.customer_id,
        dimension="gpu_count",
        **{"from": "2026-10-20T00:00:00Z", "to": "2026-10-21T00:00:00Z"},
    )
    assert theirs["totals"] == {"gpu_count": "50"}
