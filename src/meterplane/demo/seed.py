"""A demo provider with a catalogue, customers and a month of usage, seeded idempotently.

The story (who runs what, when nodes join, leave, resize or go quiet) is a pure function
of time, anchored at the demo provider's ``created_at``. Seeding again re-sends the same
samples for the hours already stored, which ingest ignores (max per node and interval),
and fills in the hours since the last run. Nothing is created twice: the provider, the
catalogue, customers, subscriptions and instances are looked up by name first, and the
example rejections are sent only while the provider has none.

Everything goes through the real services (catalogue, customers, ``ingest_samples``).
"""

import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.catalog.models import Plan
from meterplane.catalog.service import create_plan, create_service, list_plans, list_services
from meterplane.customers.models import Customer, Instance, Subscription
from meterplane.customers.service import (
    create_customer,
    create_subscription,
    list_customers,
    list_instances,
    list_subscriptions,
    register_instance,
    terminate_instance,
)
from meterplane.kit.time import INTERVAL_SECONDS, floor_to, hour_floor
from meterplane.metering.codecs import DecodedBatch
from meterplane.metering.ingest import IngestPolicy, ingest_samples, list_rejections
from meterplane.metering.schemas import RejectedRow
from meterplane.tenancy.models import ApiKey, ApiKeyScope, Provider
from meterplane.tenancy.service import create_api_key, create_provider, revoke_api_key

DEMO_PROVIDER_NAME = "Demo Cloud Inc."
DEMO_KEY_NAME = "demo admin key"
# Long enough that last month's invoices cover a few weeks of usage.
DEFAULT_DAYS = 45
DEFAULT_BATCH_SIZE = 5000

INTERVAL = timedelta(seconds=INTERVAL_SECONDS)


# --- the catalogue -------------------------------------------------------------------------

SERVICES = ("Managed PostgreSQL", "Managed Kafka")


@dataclass(frozen=True)
class PlanSpec:
    key: str
    service: str
    name: str
    prices: dict[str, Decimal]


# USD per unit-hour. Storage: $0.10–0.16 per GiB-month ÷ 730 hours.
PLANS: tuple[PlanSpec, ...] = (
    PlanSpec(
        "pg-standard",
        "Managed PostgreSQL",
        "Standard",
        {
            "cpu_cores": Decimal("0.0400"),
            "memory_gib": Decimal("0.0050"),
            "storage_gib": Decimal("0.000137"),
        },
    ),
    PlanSpec(
        "pg-business",
        "Managed PostgreSQL",
        "Business",
        {
            "cpu_cores": Decimal("0.0550"),
            "memory_gib": Decimal("0.0070"),
            "storage_gib": Decimal("0.000192"),
        },
    ),
    PlanSpec(
        "kafka-standard",
        "Managed Kafka",
        "Standard",
        {
            "cpu_cores": Decimal("0.0450"),
            "memory_gib": Decimal("0.0060"),
            "storage_gib": Decimal("0.000150"),
        },
    ),
    PlanSpec(
        "kafka-enterprise",
        "Managed Kafka",
        "Enterprise",
        {
            "cpu_cores": Decimal("0.0650"),
            "memory_gib": Decimal("0.0085"),
            "storage_gib": Decimal("0.000219"),
            "replicas": Decimal("0.0200"),
        },
    ),
)


# Story times are whole percents of the demo's span: exact, and easy to read in the specs.
Percent = int


@dataclass(frozen=True)
class CustomerSpec:
    external_billing_id: str
    name: str
    email: str
    # Percent of the story at which the customer signed up.
    joins: Percent = 0


CUSTOMERS: tuple[CustomerSpec, ...] = (
    CustomerSpec("NW-1001", "Northwind Analytics", "billing@northwind.example"),
    CustomerSpec("GX-1002", "Globex Logistics", "ap@globex.example"),
    CustomerSpec("IT-1003", "Initech Payments", "finance@initech.example"),
    CustomerSpec("UH-1004", "Umbrella Health", "billing@umbrella-health.example"),
    CustomerSpec("SR-1005", "Stark Robotics", "accounts@stark-robotics.example"),
    CustomerSpec("WM-1006", "Wayne Media", "billing@wayne-media.example"),
    CustomerSpec("TG-1007", "Tyrell Genomics", "ap@tyrell.example", joins=35),
    CustomerSpec("HS-1008", "Hooli Search", "cloud-billing@hooli.example", joins=60),
)


# --- the usage story -----------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    cpu_cores: Decimal
    memory_gib: Decimal
    storage_gib: int


def node_size(cpu: str, memory: str, storage: int) -> Size:
    return Size(Decimal(cpu), Decimal(memory), storage)


@dataclass(frozen=True)
class InstanceSpec:
    """One instance's month. Times are percents of the story (0 = its start, 100 = its end)."""

    instance_id: str
    customer: str  # external billing id
    plan: str  # plan key
    cloud: str
    region: str
    size: Size
    nodes: int = 1
    starts: Percent = 0
    terminates: Percent | None = None
    resize: tuple[Percent, Size] | None = None  # vertical scaling of every node
    scale_out: tuple[Percent, Percent | None] | None = None  # an extra node joins (and leaves)
    replace: Percent | None = None  # node-1 is replaced by a new node (10 min overlap)
    gaps: tuple[tuple[Percent, int], ...] = ()  # (start percent, minutes) without samples


INSTANCES: tuple[InstanceSpec, ...] = (
    InstanceSpec(
        "pg-northwind-prod", "NW-1001", "pg-business", "aws", "us-east-1",
        node_size("8", "32", 500), nodes=3, resize=(45, node_size("16", "64", 500)),
    ),
    InstanceSpec(
        "pg-northwind-staging", "NW-1001", "pg-standard", "aws", "us-east-1",
        node_size("2", "8", 100), gaps=((20, 300), (70, 90)),
    ),
    InstanceSpec(
        "kafka-northwind-events", "NW-1001", "kafka-standard", "aws", "us-east-1",
        node_size("4", "16", 1000), nodes=3, replace=55,
    ),
    InstanceSpec(
        "pg-globex-main", "GX-1002", "pg-standard", "gcp", "europe-west3",
        node_size("4", "16", 250), nodes=2, scale_out=(30, 42),
    ),
    InstanceSpec(
        "kafka-globex-tracking", "GX-1002", "kafka-enterprise", "gcp", "europe-west3",
        node_size("8", "32", 2000), nodes=3, scale_out=(66, None),
    ),
    InstanceSpec(
        "pg-initech-ledger", "IT-1003", "pg-business", "azure", "westeurope",
        node_size("8", "64", 800), nodes=2, gaps=((50, 45),),
    ),
    InstanceSpec(
        "pg-initech-reporting", "IT-1003", "pg-standard", "azure", "westeurope",
        node_size("2", "8", 200), terminates=80,
    ),
    InstanceSpec(
        "pg-umbrella-ehr", "UH-1004", "pg-business", "aws", "eu-west-1",
        node_size("4", "32", 400), nodes=2, resize=(25, node_size("8", "32", 600)),
    ),
    InstanceSpec(
        "pg-stark-telemetry", "SR-1005", "pg-standard", "gcp", "us-central1",
        node_size("4", "16", 300), replace=38, gaps=((15, 180),),
    ),
    InstanceSpec(
        "kafka-stark-robots", "SR-1005", "kafka-standard", "gcp", "us-central1",
        node_size("2", "8", 500), nodes=3,
    ),
    InstanceSpec(
        "pg-wayne-cms", "WM-1006", "pg-standard", "azure", "eastus",
        node_size("2", "4", 80), resize=(60, node_size("2", "8", 80)),
    ),
    InstanceSpec(
        "kafka-wayne-streams", "WM-1006", "kafka-enterprise", "azure", "eastus",
        node_size("4", "16", 1500), nodes=2, scale_out=(10, 20),
    ),
    InstanceSpec(
        "pg-tyrell-genome", "TG-1007", "pg-business", "aws", "ap-southeast-2",
        node_size("16", "128", 2000), nodes=2, starts=35,
    ),
    InstanceSpec(
        "pg-hooli-index", "HS-1008", "pg-business", "gcp", "us-central1",
        node_size("8", "32", 1000), nodes=2, starts=60, scale_out=(85, None),
    ),
    InstanceSpec(
        "kafka-hooli-ingest", "HS-1008", "kafka-standard", "gcp", "us-central1",
        node_size("0.5", "1.5", 50), starts=62,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class NodeLife:
    node_id: str
    joins: datetime
    leaves: datetime | None
    sizes: tuple[tuple[datetime, Size], ...]  # (from, size), oldest first

    def size_at(self, moment: datetime) -> Size:
        current = self.sizes[0][1]
        for start, value in self.sizes:
            if start <= moment:
                current = value
        return current


@dataclass(frozen=True)
class InstanceLife:
    spec: InstanceSpec
    starts: datetime
    terminates: datetime | None
    nodes: tuple[NodeLife, ...]
    gaps: tuple[tuple[datetime, datetime], ...]

    def reports_at(self, moment: datetime) -> bool:
        if moment < self.starts or (self.terminates is not None and moment >= self.terminates):
            return False
        return not any(start <= moment < end for start, end in self.gaps)


class Story:
    """Maps percents of the story to instants: ``origin + percent × span / 100``, 5-min grid."""

    def __init__(self, origin: datetime, days: int) -> None:
        self.origin = origin
        self.span = timedelta(days=days)

    def at(self, percent: Percent) -> datetime:
        return floor_to(self.origin + self.span * percent / 100, INTERVAL_SECONDS)

    def instance(self, spec: InstanceSpec) -> InstanceLife:
        starts = self.at(spec.starts)
        terminates = self.at(spec.terminates) if spec.terminates is not None else None
        sizes: tuple[tuple[datetime, Size], ...] = ((starts, spec.size),)
        if spec.resize is not None:
            sizes += ((self.at(spec.resize[0]), spec.resize[1]),)
        nodes = [
            NodeLife(f"{spec.instance_id}-{n}", starts, None, sizes)
            for n in range(1, spec.nodes + 1)
        ]
        extra = spec.nodes + 1
        if spec.replace is not None:
            swap = self.at(spec.replace)
            old = nodes[0]
            nodes[0] = NodeLife(old.node_id, old.joins, swap, old.sizes)
            nodes.append(NodeLife(f"{spec.instance_id}-{extra}", swap - 2 * INTERVAL, None, sizes))
            extra += 1
        if spec.scale_out is not None:
            joins, leaves = spec.scale_out
            nodes.append(
                NodeLife(
                    f"{spec.instance_id}-{extra}",
                    self.at(joins),
                    self.at(leaves) if leaves is not None else None,
                    sizes,
                )
            )
        gaps = tuple(
            (self.at(start), self.at(start) + timedelta(minutes=minutes))
            for start, minutes in spec.gaps
        )
        return InstanceLife(spec, starts, terminates, tuple(nodes), gaps)


def storage_at(node: NodeLife, base: Size, moment: datetime) -> int:
    """Allocated storage autoscales by 10% of its base each week, four times at most."""
    weeks = min(int((moment - node.joins) / timedelta(days=7)), 4)
    return base.storage_gib + base.storage_gib * weeks // 10


def _offset_seconds(node_id: str, interval: datetime) -> int:
    """Where in its 5 minutes an agent reports: stable per node and interval, never random."""
    return 5 + zlib.crc32(f"{node_id}|{int(interval.timestamp())}".encode()) % 240


def generate_samples(
    lives: list[InstanceLife], *, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    """Every sample of the story with a timestamp in [start, end), in time order."""
    interval = floor_to(start, INTERVAL_SECONDS)
    while interval < end:
        for life in lives:
            if not life.reports_at(interval):
                continue
            for node in life.nodes:
                if interval < node.joins or (node.leaves is not None and interval >= node.leaves):
                    continue
                moment = interval + timedelta(seconds=_offset_seconds(node.node_id, interval))
                if not start <= moment < end:
                    continue
                current = node.size_at(interval)
                yield {
                    "instance_id": life.spec.instance_id,
                    "node_id": node.node_id,
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "cpu_cores": current.cpu_cores,
                    "memory_gib": current.memory_gib,
                    "storage_gib": Decimal(storage_at(node, current, interval)),
                }
        interval += INTERVAL


def batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[DecodedBatch]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield DecodedBatch(rows=chunk)
            chunk = []
    if chunk:
        yield DecodedBatch(rows=chunk)


# --- seeding -------------------------------------------------------------------------------


@dataclass
class DemoCatalogue:
    provider_id: str
    origin: datetime
    created: bool
    service_ids: dict[str, str] = field(default_factory=dict)
    plan_ids: dict[str, str] = field(default_factory=dict)  # by plan key
    customer_ids: dict[str, str] = field(default_factory=dict)  # by external billing id
    subscription_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    instance_ids: list[str] = field(default_factory=list)


DEMO_CONSOLE_EMAIL = "owner@demo-cloud.example"


@dataclass(frozen=True)
class DemoResult:
    provider_id: str
    admin_key: str
    created: bool
    origin: datetime
    usage_start: datetime
    usage_end: datetime
    customer_ids: dict[str, str]  # customer name → id
    instance_ids: list[str]
    samples_sent: int
    samples_accepted: int
    rejections: list[RejectedRow]
    console_email: str = DEMO_CONSOLE_EMAIL
    console_password: str = ""


def find_demo_provider(session: Session) -> Provider | None:
    """The oldest provider named like the demo one, if any."""
    return session.scalar(
        select(Provider)
        .where(Provider.name == DEMO_PROVIDER_NAME)
        .order_by(Provider.created_at, Provider.id)
        .limit(1)
    )


def ensure_catalogue(session: Session, *, now: datetime, days: int) -> DemoCatalogue:
    """Find or create the demo provider and every object of its catalogue."""
    provider = find_demo_provider(session)
    created = provider is None
    if provider is None:
        # The demo provider has been billing for ``days`` already: the story starts then.
        provider = create_provider(
            session, DEMO_PROVIDER_NAME, now=hour_floor(now) - timedelta(days=days)
        )
    story = Story(provider.created_at, days)
    catalogue = DemoCatalogue(provider.id, provider.created_at, created)
    provider_id = provider.id
    origin = provider.created_at

    services = {s.name: s.id for s in list_services(session, provider_id)}
    for name in SERVICES:
        if name not in services:
            services[name] = create_service(session, provider_id, name, now=origin).id
    catalogue.service_ids = services

    plans: dict[tuple[str, str], Plan] = {
        (p.service_id, p.name): p for p in list_plans(session, provider_id)
    }
    for plan_spec in PLANS:
        service_id = services[plan_spec.service]
        plan = plans.get((service_id, plan_spec.name))
        if plan is None:
            plan = create_plan(
                session,
                provider_id,
                service_id=service_id,
                name=plan_spec.name,
                currency="USD",
                prices=plan_spec.prices,
                now=origin,
            )
        catalogue.plan_ids[plan_spec.key] = plan.id

    customers: dict[str | None, Customer] = {
        c.external_billing_id: c for c in list_customers(session, provider_id)
    }
    for customer_spec in CUSTOMERS:
        customer = customers.get(customer_spec.external_billing_id)
        if customer is None:
            customer = create_customer(
                session,
                provider_id,
                name=customer_spec.name,
                email=customer_spec.email,
                external_billing_id=customer_spec.external_billing_id,
                now=story.at(customer_spec.joins),
            )
        catalogue.customer_ids[customer_spec.external_billing_id] = customer.id

    subscriptions: dict[tuple[str, str], Subscription] = {
        (s.customer_id, s.plan_id): s for s in list_subscriptions(session, provider_id)
    }
    instances: dict[str, Instance] = {i.id: i for i in list_instances(session, provider_id)}
    for spec in INSTANCES:
        life = story.instance(spec)
        customer_id = catalogue.customer_ids[spec.customer]
        plan_id = catalogue.plan_ids[spec.plan]
        subscription = subscriptions.get((customer_id, plan_id))
        if subscription is None:
            subscription = create_subscription(
                session, provider_id, customer_id=customer_id, plan_id=plan_id, now=life.starts
            )
            subscriptions[(customer_id, plan_id)] = subscription
        catalogue.subscription_ids[(spec.customer, spec.plan)] = subscription.id
        if spec.instance_id not in instances:
            register_instance(
                session,
                provider_id,
                instance_id=spec.instance_id,
                subscription_id=subscription.id,
                cloud=spec.cloud,
                region=spec.region,
                external_billing_id=f"{spec.customer}-{spec.instance_id}",
                now=life.starts,
            )
        if life.terminates is not None and life.terminates <= now:
            terminate_instance(session, provider_id, spec.instance_id, now=life.terminates)
        catalogue.instance_ids.append(spec.instance_id)
    return catalogue


def mint_demo_key(session: Session, provider_id: str, *, now: datetime) -> str:
    """A fresh admin key for this run; the keys of earlier runs are revoked."""
    earlier = session.scalars(
        select(ApiKey).where(
            ApiKey.provider_id == provider_id,
            ApiKey.name == DEMO_KEY_NAME,
            ApiKey.revoked_at.is_(None),
        )
    ).all()
    for api_key in earlier:
        revoke_api_key(session, provider_id, api_key.id, now=now)
    return create_api_key(
        session, provider_id, ApiKeyScope.admin, name=DEMO_KEY_NAME, now=now
    ).secret


def example_rejections(story: Story, *, now: datetime) -> DecodedBatch:
    """Rows an integration gets wrong, one per common reason."""
    recent = floor_to(now - timedelta(hours=1), INTERVAL_SECONDS)

    def row(instance_id: str, moment: str, **values: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "instance_id": instance_id,
            "node_id": f"{instance_id}-1",
            "timestamp": moment,
            "cpu_cores": Decimal(2),
            "memory_gib": Decimal(8),
            "storage_gib": Decimal(100),
        }
        base.update(values)
        return base

    iso = recent.isoformat().replace("+00:00", "Z")
    terminated = next(spec for spec in INSTANCES if spec.terminates is not None)
    return DecodedBatch(
        rows=[
            row("pg-globex-staging", iso),  # never registered
            row("pg-wayne-cms", iso, cpu_cores=Decimal(-2)),
            row("pg-wayne-cms", recent.replace(tzinfo=None).isoformat()),  # no offset
            row("pg-wayne-cms", (now + timedelta(days=1)).isoformat()),
            row(terminated.instance_id, iso),
            row("pg-wayne-cms", iso, memory_gib=Decimal("8.0000000001")),
            {"instance_id": "pg-wayne-cms", "node_id": "pg-wayne-cms-1", "timestamp": iso},
        ]
    )


def ensure_console_user(session: Session, provider_id: str, *, now: datetime) -> str:
    """The demo's console owner, with a new password each run (only its hash is stored)."""
    from meterplane.users import service as users
    from meterplane.users.models import Role

    password = secrets.token_urlsafe(12)
    existing = [u for u in users.list_users(session, provider_id) if u.email == DEMO_CONSOLE_EMAIL]
    if existing:
        users.set_password(session, provider_id, existing[0].id, password, actor="demo", now=now)
    else:
        users.create_user(
            session,
            provider_id,
            email=DEMO_CONSOLE_EMAIL,
            password=password,
            role=Role.owner,
            actor="demo",
            now=now,
        )
    return password


def seed_demo(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    days: int = DEFAULT_DAYS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    policy: IngestPolicy | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> DemoResult:
    """Seed (or top up) the demo; owns its transactions: the catalogue, then one per batch."""
    policy = policy or IngestPolicy()
    with factory() as session, session.begin():
        catalogue = ensure_catalogue(session, now=now, days=days)
        admin_key = mint_demo_key(session, catalogue.provider_id, now=now)
        console_password = ensure_console_user(session, catalogue.provider_id, now=now)
        names = {c.id: c.name for c in list_customers(session, catalogue.provider_id)}
    story = Story(catalogue.origin, days)
    provider_id = catalogue.provider_id

    # Re-sending what is stored changes nothing, so only the retention window limits the start.
    earliest = hour_floor(now - policy.retention) + timedelta(hours=1)
    start = max(catalogue.origin, earliest, hour_floor(now - timedelta(days=days)))
    lives = [story.instance(spec) for spec in INSTANCES]
    sent = accepted = 0
    for batch in batches(generate_samples(lives, start=start, end=now), batch_size):
        with factory() as session, session.begin():
            result = ingest_samples(session, provider_id, batch, now=now, policy=policy)
        sent += len(batch.rows)
        accepted += result.accepted
        if on_batch is not None:
            on_batch(len(batch.rows))

    rejections: list[RejectedRow] = []
    with factory() as session, session.begin():
        if not list_rejections(session, provider_id, limit=1):
            result = ingest_samples(
                session, provider_id, example_rejections(story, now=now), now=now, policy=policy
            )
            rejections = result.rejected
    return DemoResult(
        provider_id=provider_id,
        admin_key=admin_key,
        created=catalogue.created,
        origin=catalogue.origin,
        usage_start=start,
        usage_end=now,
        customer_ids={names[cid]: cid for cid in catalogue.customer_ids.values()},
        instance_ids=catalogue.instance_ids,
        samples_sent=sent,
        samples_accepted=accepted,
        rejections=rejections,
        console_password=console_password,
    )
