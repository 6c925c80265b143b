"""Generated pricing scenarios: the upcoming invoice agrees with an hour-by-hour brute force.

Price versions (for all or only new subscriptions), negotiated overrides with windows, and
mid-month plan changes, all on one customer; the model below knows nothing of segments.
``gpu_count`` is the provider's custom dimension, present in some samples only.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Clock, Tenant

NOW = datetime(2026, 10, 20, 12, 30, tzinfo=UTC)
MONTH = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = int((NOW - MONTH) / timedelta(hours=1)) + 1  # the hour in progress counts
DIMS = ("cpu_cores", "memory_gib", "storage_gib", "gpu_count")

hour_index = st.integers(0, HOURS - 1)
price = st.decimals(min_value=0, max_value=Decimal("0.5"), places=4)
version = st.fixed_dictionaries(
    {
        "plan": st.sampled_from(["basic", "pro"]),
        "hour": st.integers(1, HOURS - 1),
        "prices": st.dictionaries(st.sampled_from(DIMS), price, min_size=1),
        "new_only": st.booleans(),
    }
)
override = st.fixed_dictionaries(
    {
        "sub": st.sampled_from(["old", "new"]),
        "dim": st.sampled_from(DIMS),
        "price": price,
        "start": hour_index,
        "length": st.one_of(st.none(), st.integers(1, 200)),
    }
)
usage = st.lists(
    st.tuples(
        st.integers(0, 2),
        hour_index,
        st.integers(0, 16),
        st.integers(0, 64),
        st.one_of(st.none(), st.integers(0, 8)),
    ),
    min_size=1,
    max_size=40,
)


def _h(index: int) -> datetime:
    return MONTH + timedelta(hours=index)


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    versions=st.lists(version, max_size=4, unique_by=lambda v: (v["plan"], v["hour"])),
    overrides=st.lists(override, max_size=3, unique_by=lambda o: (o["sub"], o["dim"])),
    change_hour=st.one_of(st.none(), st.integers(1, HOURS - 1)),
    rows=usage,
)
def test_upcoming_invoice_matches_brute_force(
    client: TestClient,
    make_tenant: Any,
    clock: Clock,
    versions: list[dict[str, Any]],
    overrides: list[dict[str, Any]],
    change_hour: int | None,
    rows: list[tuple[Any, ...]],
) -> None:
    tenant: Tenant = make_tenant("Scenario Co")
    h = tenant.admin

    def post(path: str, body: dict[str, Any], status: int = 201) -> Any:
        response = client.post(path, json=body, headers=h)
        assert response.status_code == status, response.text
        return response.json()

    clock.set(datetime(2026, 9, 1, tzinfo=UTC))
    post("/v1/dimensions", {"key": "gpu_count", "unit": "GPU"})
    service = post("/v1/services", {"name": "db"})
    base = {
        "basic": {"cpu_cores": Decimal("0.04"), "memory_gib": Decimal("0.005")},
        "pro": {
            "cpu_cores": Decimal("0.06"),
            "memory_gib": Decimal("0.004"),
            "storage_gib": Decimal("0.0003"),
            "gpu_count": Decimal("0.35"),
        },
    }
    plans = {
        name: post(
            "/v1/plans",
            {
                "service_id": service["id"],
                "name": name,
                "currency": "USD",
                "prices": {k: str(v) for k, v in prices.items()},
            },
        )["id"]
        for name, prices in base.items()
    }
    customer = post("/v1/customers", {"name": "C", "email": "c@example.com"})["id"]
    subs = {
        "old": post("/v1/subscriptions", {"customer_id": customer, "plan_id": plans["basic"]})["id"]
    }
    sub_created = {"old": clock()}
    clock.set(datetime(2026, 10, 10, 7, tzinfo=UTC))
    subs["new"] = post("/v1/subscriptions", {"customer_id": customer, "plan_id": plans["pro"]})[
        "id"
    ]
    sub_created["new"] = clock()
    clock.set(NOW)
    # instance 0 and 1 on the old subscription (basic), instance 2 on the new one (pro)
    instance_sub = {0: "old", 1: "old", 2: "new"}
    for index, sub in instance_sub.items():
        post(
            "/v1/instances",
            {"id": f"i{index}", "subscription_id": subs[sub], "cloud": "aws", "region": "r"},
        )
    for v in versions:
        post(
            f"/v1/plans/{plans[v['plan']]}/prices",
            {
                "prices": {k: str(p) for k, p in v["prices"].items()},
                "effective_from": _h(v["hour"]).isoformat(),
                "applies_to": "new_subscriptions" if v["new_only"] else "all",
            },
        )
    for o in overrides:
        end = o["start"] + o["length"] if o["length"] is not None else None
        post(
            f"/v1/subscriptions/{subs[o['sub']]}/prices",
            {
                "prices": {o["dim"]: str(o["price"])},
                "effective_from": _h(o["start"]).isoformat(),
                "effective_to": _h(end).isoformat() if end is not None else None,
            },
        )
    if change_hour is not None:
        response = client.post(
            "/v1/instances/i0/change-plan",
            json={"plan_id": plans["pro"], "effective_from": _h(change_hour).isoformat()},
            headers=h,
        )
        assert response.status_code == 200, response.text

    hourly: dict[tuple[int, int], tuple[int, int, int]] = {}
    samples = []
    for instance, hour, cpu, mem, gpu in rows:
        held = hourly.get((instance, hour), (0, 0, 0))
        hourly[(instance, hour)] = (max(cpu, held[0]), max(mem, held[1]), max(gpu or 0, held[2]))
        sample: dict[str, Any] = {
            "instance_id": f"i{instance}",
            "node_id": "n",
            "timestamp": (_h(hour) + timedelta(minutes=7)).isoformat(),
            "cpu_cores": cpu,
            "memory_gib": mem,
            "storage_gib": 10,
        }
        if gpu is not None:
            sample["gpu_count"] = gpu
        samples.append(sample)
    result = client.post("/v1/usage/samples", json={"samples": samples}, headers=tenant.ingest)
    assert result.json()["rejected"] == []

    # The brute force: every hour on its own, with the rules stated plainly.
    def plan_of(instance: int, hour: int) -> str:
        if instance == 0 and change_hour is not None and hour >= change_hour:
            return "pro"
        return "basic" if instance_sub[instance] == "old" else "pro"

    def price_of(instance: int, hour: int, dim: str) -> Decimal | None:
        sub = instance_sub[instance]
        for o in overrides:
            end = o["start"] + o["length"] if o["length"] is not None else 10**9
            if o["sub"] == sub and o["dim"] == dim and o["start"] <= hour < end:
                return Decimal(o["price"])
        plan = plan_of(instance, hour)
        found: tuple[int, Decimal] | None = None
        if dim in base[plan]:
            found = (-1, base[plan][dim])
        for v in versions:
            applies = not v["new_only"] or sub_created[sub] >= _h(v["hour"])
            in_force = v["plan"] == plan and applies and dim in v["prices"]
            if in_force and v["hour"] <= hour and (found is None or v["hour"] > found[0]):
                found = (v["hour"], Decimal(v["prices"][dim]))
        return found[1] if found else None

    quantities: dict[tuple[str, str, Decimal], Decimal] = defaultdict(Decimal)
    for (instance, hour), (cpu, mem, gpu) in hourly.items():
        per_dim = (("cpu_cores", cpu), ("memory_gib", mem), ("storage_gib", 10), ("gpu_count", gpu))
        for dim, qty in per_dim:
            unit_price = price_of(instance, hour, dim)
            if unit_price is not None and qty:
                quantities[(plans[plan_of(instance, hour)], dim, unit_price)] += qty
    expected = {key: (qty, _round(qty * key[2])) for key, qty in quantities.items()}

    response = client.get(f"/v1/customers/{customer}/upcoming-invoice", headers=h)
    assert response.status_code == 200, response.text
    invoice = response.json()
    got = {
        (line["plan_id"], line["dimension"], Decimal(line["unit_price"])): (
            Decimal(line["quantity"]),
            Decimal(line["amount"]),
        )
        for line in invoice["lines"]
    }
    assert got == expected
    assert Decimal(invoice["subtotal"]) == sum((a for _, a in expected.values()), Decimal(0))
    assert invoice["usage_through"] == "2026-10-20T13:00:00Z"
