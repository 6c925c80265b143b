"""Rating: usage × the price in force at each hour → invoice lines (DESIGN rules 5–7).

The one pricing implementation: the upcoming-invoice estimate and the monthly close both
call ``rate_customers``. Prices change only on whole hours, so each instance's period splits
into a few segments of constant plan and prices; usage is summed per segment in SQL.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from meterplane.catalog.models import Plan, PlanPrice, PriceScope
from meterplane.customers.models import (
    Instance,
    InstancePlanPeriod,
    Subscription,
    SubscriptionPrice,
)
from meterplane.kit.db import UTCDateTime
from meterplane.kit.money import round_money
from meterplane.kit.quantity import from_scaled
from meterplane.metering.dimensions import PRESET_KEYS, UNITS, CustomDimension, custom_dimensions
from meterplane.metering.models import HourlyCustomUsage, HourlyUsage

_scratch = MetaData()
rating_segments = Table(
    "rating_segments",
    _scratch,
    Column("seg_id", Integer, nullable=False),
    Column("instance_pk", BigInteger, nullable=False),
    Column("seg_start", UTCDateTime(), nullable=False),
    Column("seg_end", UTCDateTime(), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


@dataclass(frozen=True)
class RatedLine:
    plan_id: str
    plan_name: str
    dimension: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InstanceLine:
    instance_id: str
    external_billing_id: str | None
    cloud: str
    region: str
    plan_id: str
    dimension: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass
class Rating:
    customer_id: str
    currency: str | None
    start: datetime
    end: datetime
    lines: list[RatedLine] = field(default_factory=list)
    instances: list[InstanceLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        """Sum of the rounded lines (rule 6)."""
        return sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class _Segment:
    instance: Instance
    start: datetime
    end: datetime
    plan_id: str
    prices: dict[str, Decimal]


class _PriceBook:
    """Plan versions and subscription overrides, answering 'what price at this hour'."""

    def __init__(self, versions: Iterable[PlanPrice], overrides: Iterable[SubscriptionPrice]):
        self.versions: dict[str, list[PlanPrice]] = defaultdict(list)
        for version in versions:
            self.versions[version.plan_id].append(version)
        for held in self.versions.values():
            held.sort(key=lambda v: v.effective_from)
        self.overrides: dict[str, list[SubscriptionPrice]] = defaultdict(list)
        for override in overrides:
            self.overrides[override.subscription_id].append(override)

    def _applicable(self, plan_id: str, subscription: Subscription) -> list[PlanPrice]:
        # Grandfathering: a version for new subscriptions skips those that started before it.
        return [
            v
            for v in self.versions[plan_id]
            if v.applies_to == PriceScope.all_subscriptions
            or subscription.created_at >= v.effective_from
        ]

    def boundaries(
        self, plan_id: str, subscription: Subscription, start: datetime, end: datetime
    ) -> list[datetime]:
        moments = {v.effective_from for v in self._applicable(plan_id, subscription)}
        for o in self.overrides[subscription.id]:
            moments.add(o.effective_from)
            if o.effective_to is not None:
                moments.add(o.effective_to)
        return sorted(m for m in moments if start < m < end)

    def prices_at(
        self, plan_id: str, subscription: Subscription, hour: datetime
    ) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for version in self._applicable(plan_id, subscription):
            if version.effective_from <= hour:
                prices[version.dimension_key] = version.unit_price
        for o in self.overrides[subscription.id]:
            if o.effective_from <= hour and (o.effective_to is None or hour < o.effective_to):
                prices[o.dimension_key] = o.unit_price
        return prices


def rate_customers(
    session: Session,
    provider_id: str,
    customer_ids: Sequence[str],
    *,
    start: datetime,
    end: datetime,
) -> dict[str, Rating]:
    """Price every customer's usage on [start, end), hour by hour, as the invoice will."""
    ratings = {
        cid: Rating(customer_id=cid, currency=None, start=start, end=end) for cid in customer_ids
    }
    if not customer_ids:
        return ratings
    instances = session.scalars(
        select(Instance).where(
            Instance.provider_id == provider_id, Instance.customer_id.in_(customer_ids)
        )
    ).all()
    subscriptions = {
        s.id: s
        for s in session.scalars(
            select(Subscription).where(
                Subscription.provider_id == provider_id,
                Subscription.customer_id.in_(customer_ids),
            )
        )
    }
    periods: dict[int, list[InstancePlanPeriod]] = defaultdict(list)
    for period in session.scalars(
        select(InstancePlanPeriod)
        .where(
            InstancePlanPeriod.provider_id == provider_id,
            InstancePlanPeriod.instance_pk.in_([i.pk for i in instances]),
        )
        .order_by(InstancePlanPeriod.effective_from)
    ):
        periods[period.instance_pk].append(period)
    plan_ids = {p.plan_id for held in periods.values() for p in held} | {
        s.plan_id for s in subscriptions.values()
    }
    plans = {
        p.id: p
        for p in session.scalars(
            select(Plan).where(Plan.provider_id == provider_id, Plan.id.in_(plan_ids))
        )
    }
    book = _PriceBook(
        session.scalars(
            select(PlanPrice).where(
                PlanPrice.provider_id == provider_id, PlanPrice.plan_id.in_(plan_ids)
            )
        ),
        session.scalars(
            select(SubscriptionPrice).where(
                SubscriptionPrice.provider_id == provider_id,
                SubscriptionPrice.subscription_id.in_(list(subscriptions)),
            )
        ),
    )
    for subscription in subscriptions.values():
        rating = ratings[subscription.customer_id]
        if rating.currency is None:
            rating.currency = plans[subscription.plan_id].currency

    segments: list[_Segment] = []
    for instance in instances:
        subscription = subscriptions[instance.subscription_id]
        for plan_id, seg_start, seg_end in _plan_spans(periods[instance.pk], start, end):
            cuts = [seg_start, *book.boundaries(plan_id, subscription, seg_start, seg_end), seg_end]
            for a, b in pairwise(cuts):
                segments.append(
                    _Segment(instance, a, b, plan_id, book.prices_at(plan_id, subscription, a))
                )
    connection = session.connection()
    custom = custom_dimensions(connection, provider_id)
    usage = _usage_per_segment(connection, segments, provider_id, custom)
    _fill(ratings, segments, usage, plans, {**UNITS, **{d.key: d.unit for d in custom}})
    return ratings


def rate_customer(
    session: Session, provider_id: str, customer_id: str, *, start: datetime, end: datetime
) -> Rating:
    return rate_customers(session, provider_id, [customer_id], start=start, end=end)[customer_id]


def _plan_spans(
    periods: list[InstancePlanPeriod], start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime]]:
    starts = [p.effective_from for p in periods]
    spans = []
    for index, period in enumerate(periods):
        span_end = starts[index + 1] if index + 1 < len(starts) else end
        a, b = max(period.effective_from, start), min(span_end, end)
        if a < b:
            spans.append((period.plan_id, a, b))
    return spans


def _usage_per_segment(
    connection: Connection,
    segments: list[_Segment],
    provider_id: str,
    custom: Sequence[CustomDimension],
) -> dict[int, dict[str, int]]:
    """Scaled unit-hours per segment and dimension key, preset and custom alike."""
    if not segments:
        return {}
    rating_segments.create(connection, checkfirst=True)
    connection.execute(rating_segments.delete())
    connection.execute(
        rating_segments.insert(),
        [
            {"seg_id": index, "instance_pk": s.instance.pk, "seg_start": s.start, "seg_end": s.end}
            for index, s in enumerate(segments)
        ],
    )
    h = HourlyUsage.__table__.c
    seg = rating_segments.c
    rows = connection.execute(
        select(
            rating_segments.c.seg_id,
            *(func.sum(h[key]).label(key) for key in PRESET_KEYS),
        )
        .select_from(
            rating_segments.join(
                HourlyUsage.__table__,
                (h.instance_pk == rating_segments.c.instance_pk)
                & (h.hour_start >= rating_segments.c.seg_start)
                & (h.hour_start < rating_segments.c.seg_end),
            )
        )
        .group_by(rating_segments.c.seg_id)
    )
    result = {row.seg_id: {key: int(getattr(row, key)) for key in PRESET_KEYS} for row in rows}
    if custom:
        key_of = {d.id: d.key for d in custom}
        c = HourlyCustomUsage.__table__.c
        for row in connection.execute(
            select(seg.seg_id, c.dimension_id, func.sum(c.value).label("value"))
            .select_from(
                rating_segments.join(
                    HourlyCustomUsage.__table__,
                    (c.instance_pk == seg.instance_pk)
                    & (c.hour_start >= seg.seg_start)
                    & (c.hour_start < seg.seg_end),
                )
            )
            .where(c.provider_id == provider_id)
            .group_by(seg.seg_id, c.dimension_id)
        ):
            key = key_of.get(row.dimension_id)
            if key is not None:
                result.setdefault(row.seg_id, {})[key] = int(row.value)
    connection.execute(rating_segments.delete())
    return result


def _fill(
    ratings: dict[str, Rating],
    segments: list[_Segment],
    usage: dict[int, dict[str, int]],
    plans: dict[str, Plan],
    units: dict[str, str],
) -> None:
    """Lines per plan × dimension × price; ``units`` lists every dimension in display order."""
    per_line: dict[tuple[str, str, str, Decimal], int] = defaultdict(int)
    per_instance: dict[tuple[str, int, str, str, Decimal], int] = defaultdict(int)
    instances: dict[int, Instance] = {}
    for index, segment in enumerate(segments):
        quantities = usage.get(index)
        if quantities is None:
            continue
        customer_id = segment.instance.customer_id
        instances[segment.instance.pk] = segment.instance
        for key, scaled in quantities.items():
            price = segment.prices.get(key)
            if price is None or scaled == 0:
                continue  # a plan without a price for a dimension does not bill it
            per_line[(customer_id, segment.plan_id, key, price)] += scaled
            per_instance[(customer_id, segment.instance.pk, segment.plan_id, key, price)] += scaled
    order = {key: i for i, key in enumerate(units)}
    for (customer_id, plan_id, key, price), scaled in sorted(
        per_line.items(),
        key=lambda item: (plans[item[0][1]].name, order[item[0][2]], item[0][3]),
    ):
        rating = ratings[customer_id]
        currency = plans[plan_id].currency
        rating.currency = rating.currency or currency
        quantity = from_scaled(scaled)
        rating.lines.append(
            RatedLine(
                plan_id=plan_id,
                plan_name=plans[plan_id].name,
                dimension=key,
                unit=units[key],
                quantity=quantity,
                unit_price=price,
                amount=round_money(quantity * price, currency),
            )
        )
    for (customer_id, pk, plan_id, key, price), scaled in sorted(
        per_instance.items(), key=lambda item: (instances[item[0][1]].id, order[item[0][3]])
    ):
        instance = instances[pk]
        quantity = from_scaled(scaled)
        ratings[customer_id].instances.append(
            InstanceLine(
                instance_id=instance.id,
                external_billing_id=instance.external_billing_id,
                cloud=instance.cloud,
                region=instance.region,
                plan_id=plan_id,
                dimension=key,
                quantity=quantity,
                unit_price=price,
                amount=round_money(quantity * price, plans[plan_id].currency),
            )
        )
