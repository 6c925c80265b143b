"""What an hour exports: one record per instance, hour and dimension, with the plan and the unit
price in force at that hour. Only services with the ``meterplaneMetering`` integration export."""

import hashlib
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.catalog.models import Plan, Service
from meterplane.customers.models import Customer, Instance, InstancePlanPeriod, Subscription
from meterplane.export.prices import HourlyPrices, load_hourly_prices
from meterplane.kit.quantity import from_scaled
from meterplane.metering.dimensions import PRESET_KEYS, UNITS, CustomDimension, custom_dimensions
from meterplane.metering.models import HourlyCustomUsage, HourlyUsage
from meterplane.tenancy.models import Provider

INTEGRATION = "meterplaneMetering"
HOUR = timedelta(hours=1)


class UsageRecord(NamedTuple):
    provider_id: str
    service_id: str
    service_name: str
    plan_id: str
    plan_name: str
    customer_id: str
    subscription_id: str
    external_billing_id: str
    instance_id: str
    cloud: str
    region: str
    dimension: str
    unit: str
    hour_start: datetime
    quantity: Decimal
    unit_price: Decimal | None
    currency: str


@dataclass(frozen=True)
class _PlanInfo:
    name: str
    service_id: str
    currency: str


@dataclass
class ExportContext:
    """Everything an hour's records need besides usage, loaded once per run."""

    provider_id: str
    provider_name: str
    services: dict[str, str]  # id -> name, integration on
    plans: dict[str, _PlanInfo]  # plans of those services
    instances: dict[int, Instance]
    subscriptions: dict[str, Subscription]
    customers: dict[str, Customer]
    periods: dict[int, tuple[list[datetime], list[str]]]
    prices: HourlyPrices
    custom: tuple[CustomDimension, ...]
    units: dict[str, str] = field(default_factory=dict)
    heads: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict)

    def plan_at(self, instance_pk: int, hour: datetime) -> str | None:
        held = self.periods.get(instance_pk)
        if held is None:
            return None
        starts, plan_ids = held
        index = bisect_right(starts, hour) - 1
        return plan_ids[index] if index >= 0 else None

    def customer_email(self, customer_id: str) -> str:
        customer = self.customers.get(customer_id)
        return customer.email if customer is not None else ""


def load_context(session: Session, provider_id: str) -> ExportContext:
    provider = session.get(Provider, provider_id)
    services = {
        s.id: s.name
        for s in session.scalars(select(Service).where(Service.provider_id == provider_id))
        if INTEGRATION in (s.integrations or [])
    }
    plans = {
        p.id: _PlanInfo(p.name, p.service_id, p.currency)
        for p in session.scalars(
            select(Plan).where(Plan.provider_id == provider_id, Plan.service_id.in_(list(services)))
        )
    }
    instances = {
        i.pk: i
        for i in session.scalars(select(Instance).where(Instance.provider_id == provider_id))
    }
    subscriptions = {
        s.id: s
        for s in session.scalars(
            select(Subscription).where(Subscription.provider_id == provider_id)
        )
    }
    customers = {
        c.id: c
        for c in session.scalars(select(Customer).where(Customer.provider_id == provider_id))
    }
    periods: dict[int, tuple[list[datetime], list[str]]] = {}
    for period in session.scalars(
        select(InstancePlanPeriod)
        .where(InstancePlanPeriod.provider_id == provider_id)
        .order_by(InstancePlanPeriod.instance_pk, InstancePlanPeriod.effective_from)
    ):
        starts, plan_ids = periods.setdefault(period.instance_pk, ([], []))
        starts.append(period.effective_from)
        plan_ids.append(period.plan_id)
    custom = custom_dimensions(session.connection(), provider_id)
    return ExportContext(
        provider_id=provider_id,
        provider_name=provider.name if provider is not None else "",
        services=services,
        plans=plans,
        instances=instances,
        subscriptions=subscriptions,
        customers=customers,
        periods=periods,
        prices=load_hourly_prices(session, provider_id, plans, subscriptions),
        custom=custom,
        units={
            **{key: f"{unit}-hours" for key, unit in UNITS.items()},
            **{d.key: f"{d.unit}-hours" for d in custom},
        },
    )


def usage_fingerprints(
    session: Session, provider_id: str, start: datetime, end: datetime
) -> dict[datetime, str]:
    """Per hour with usage in [start, end): row counts and column sums, preset and custom.

    Hourly values never decrease (maxima and node counts), so a late sample for an hour
    always changes that hour's fingerprint. Hours without usage are absent (``EMPTY``).
    """
    h = HourlyUsage
    result: dict[datetime, list[str]] = defaultdict(lambda: ["0", "0"])
    for row in session.execute(
        select(h.hour_start, func.count(), *(func.sum(getattr(h, key)) for key in PRESET_KEYS))
        .where(h.provider_id == provider_id, h.hour_start >= start, h.hour_start < end)
        .group_by(h.hour_start)
    ):
        result[row[0]][0] = ":".join(str(int(v)) for v in row[1:])
    c = HourlyCustomUsage
    for row in session.execute(
        select(c.hour_start, func.count(), func.sum(c.value))
        .where(c.provider_id == provider_id, c.hour_start >= start, c.hour_start < end)
        .group_by(c.hour_start)
    ):
        result[row[0]][1] = f"{int(row[1])}:{int(row[2])}"
    return {hour: "|".join(parts) for hour, parts in result.items()}


EMPTY = "0|0"


def build_hour(session: Session, ctx: ExportContext, hour: datetime) -> list[UsageRecord]:
    """The records of one hour, sorted by service, instance and dimension."""
    h = HourlyUsage
    presets: dict[int, tuple[int, ...]] = {
        row[0]: tuple(row[1:])
        for row in session.execute(
            select(h.instance_pk, *(getattr(h, key) for key in PRESET_KEYS)).where(
                h.provider_id == ctx.provider_id, h.hour_start == hour
            )
        )
    }
    customs: dict[int, list[tuple[str, int]]] = defaultdict(list)
    if ctx.custom:
        key_of = {d.id: d.key for d in ctx.custom}
        c = HourlyCustomUsage
        for pk, dimension_id, value in session.execute(
            select(c.instance_pk, c.dimension_id, c.value).where(
                c.provider_id == ctx.provider_id, c.hour_start == hour
            )
        ):
            key = key_of.get(dimension_id)
            if key is not None:
                customs[pk].append((key, value))
    order = {key: i for i, key in enumerate(ctx.units)}
    records: list[UsageRecord] = []
    make = UsageRecord._make
    for pk in presets.keys() | customs.keys():
        plan_id = ctx.plan_at(pk, hour)
        if plan_id is None or plan_id not in ctx.plans:
            continue  # the plan's service does not have the integration on
        head = _record_head(session, ctx, pk, plan_id)
        if head is None:
            continue
        subscription = ctx.subscriptions[head[6]]
        prices = ctx.prices.prices(plan_id, subscription, hour)
        currency = ctx.plans[plan_id].currency
        values: list[tuple[str, int]] = []
        if pk in presets:
            values.extend(zip(PRESET_KEYS, presets[pk], strict=True))
        values.extend(sorted(customs.get(pk, ()), key=lambda kv: order[kv[0]]))
        units = ctx.units
        for key, scaled in values:
            records.append(
                make(
                    (
                        *head,
                        key,
                        units[key],
                        hour,
                        from_scaled(int(scaled)),
                        prices.get(key),
                        currency,
                    )
                )
            )
    records.sort(key=lambda r: (r.service_id, r.instance_id, order[r.dimension]))
    return records


def _record_head(
    session: Session, ctx: ExportContext, pk: int, plan_id: str
) -> tuple[str, ...] | None:
    """The fields before ``dimension``, the same for every hour an instance is on a plan."""
    head = ctx.heads.get((pk, plan_id))
    if head is not None:
        return head
    instance = ctx.instances.get(pk)
    if instance is None:  # registered after the run started
        instance = session.get(Instance, pk)
        if instance is None:
            return None
        ctx.instances[pk] = instance
    plan = ctx.plans[plan_id]
    external = instance.external_billing_id
    if external is None:
        customer = ctx.customers.get(instance.customer_id)
        external = customer.external_billing_id if customer is not None else None
    head = (
        ctx.provider_id,
        plan.service_id,
        ctx.services[plan.service_id],
        plan_id,
        plan.name,
        instance.customer_id,
        instance.subscription_id,
        external or "",
        instance.id,
        instance.cloud,
        instance.region,
    )
    ctx.heads[(pk, plan_id)] = head
    return head


def content_sha256(records: list[UsageRecord]) -> str:
    """A digest of the records themselves, whatever the file format."""
    digest = hashlib.sha256()
    for record in records:
        digest.update("\x1f".join(map(str, record)).encode())
        digest.update(b"\n")
    return digest.hexdigest()
