"""A provider's catalogue: services, plans, versioned prices, quotas and dimensions."""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.catalog.models import Dimension, Plan, PlanPrice, PriceScope, Service
from meterplane.catalog.pricing_input import parse_prices, require_hour
from meterplane.customers.models import Instance, InstanceStatus
from meterplane.invoicing.periods import ensure_open
from meterplane.kit.errors import Conflict, InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.kit.money import validate_currency

# A plan's first prices are in force from the start of time.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
KNOWN_INTEGRATIONS = frozenset({"meterplaneMetering"})
# Fields every sample has; a custom dimension with such a key could never be reported.
RESERVED_SAMPLE_KEYS = frozenset({"instance_id", "node_id", "timestamp"})
UNSET: Any = object()


def create_service(
    session: Session,
    provider_id: str,
    name: str,
    *,
    now: datetime,
    actor: str = "system",
    integrations: Sequence[str] = (),
) -> Service:
    """Create a service (a provider's product)."""
    service = Service(
        id=new_id("svc"),
        provider_id=provider_id,
        name=name.strip(),
        integrations=_check_integrations(integrations),
        created_at=now,
    )
    session.add(service)
    _flush_unique(session, f"a service named '{name}' already exists", "service_exists")
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="service.created",
        object_type="service",
        object_id=service.id,
        before=None,
        after=service_snapshot(service),
        now=now,
    )
    return service


def service_snapshot(service: Service) -> dict[str, Any]:
    return {"name": service.name, "integrations": list(service.integrations)}


def set_service_integrations(
    session: Session,
    provider_id: str,
    service_id: str,
    integrations: Sequence[str],
    *,
    actor: str,
    now: datetime,
) -> Service:
    """Turn integrations (e.g. the metering export) on or off for a service."""
    service = get_service(session, provider_id, service_id)
    before = service_snapshot(service)
    service.integrations = _check_integrations(integrations)
    if before != service_snapshot(service):
        audit.record(
            session,
            provider_id,
            actor=actor,
            action="service.updated",
            object_type="service",
            object_id=service.id,
            before=before,
            after=service_snapshot(service),
            now=now,
        )
    return service


def _check_integrations(integrations: Sequence[str]) -> list[str]:
    unknown = sorted(set(integrations) - KNOWN_INTEGRATIONS)
    if unknown:
        raise InvalidInput(
            f"unknown integration(s): {', '.join(unknown)}; known: "
            f"{', '.join(sorted(KNOWN_INTEGRATIONS))}",
            code="unknown_integration",
        )
    return sorted(set(integrations))


def get_service(session: Session, provider_id: str, service_id: str) -> Service:
    """Load one of the provider's services."""
    service = session.scalar(
        select(Service).where(Service.provider_id == provider_id, Service.id == service_id)
    )
    if service is None:
        raise NotFound(f"service {service_id} not found", code="service_not_found")
    return service


def find_service_by_name(session: Session, provider_id: str, name: str) -> Service | None:
    return session.scalar(
        select(Service).where(Service.provider_id == provider_id, Service.name == name)
    )


def list_services(session: Session, provider_id: str) -> Sequence[Service]:
    """All services of the provider."""
    return session.scalars(
        select(Service).where(Service.provider_id == provider_id).order_by(Service.created_at)
    ).all()


def known_dimension_keys(session: Session, provider_id: str) -> set[str]:
    """Preset dimensions plus the provider's own."""
    return {d.key for d in list_dimensions(session, provider_id)}


def list_dimensions(session: Session, provider_id: str) -> Sequence[Dimension]:
    """Presets first, then the provider's custom dimensions."""
    return session.scalars(
        select(Dimension)
        .where((Dimension.provider_id.is_(None)) | (Dimension.provider_id == provider_id))
        .order_by(Dimension.provider_id.is_not(None), Dimension.id)
    ).all()


def create_dimension(
    session: Session,
    provider_id: str,
    *,
    key: str,
    unit: str,
    display_name: str | None,
    actor: str,
    now: datetime,
) -> Dimension:
    """Add a custom dimension that samples may carry and plans may price."""
    if key in RESERVED_SAMPLE_KEYS:
        raise InvalidInput(
            f"'{key}' names a sample field and cannot be a dimension", code="reserved_dimension_key"
        )
    if key in known_dimension_keys(session, provider_id):
        raise Conflict(f"dimension '{key}' already exists", code="dimension_exists")
    dimension = Dimension(
        provider_id=provider_id, key=key, unit=unit, display_name=display_name or key
    )
    session.add(dimension)
    session.flush()
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="dimension.created",
        object_type="dimension",
        object_id=key,
        before=None,
        after={"key": key, "unit": unit, "display_name": dimension.display_name},
        now=now,
    )
    return dimension


def create_plan(
    session: Session,
    provider_id: str,
    *,
    service_id: str,
    name: str,
    currency: str,
    prices: dict[str, Any],
    now: datetime,
    max_instances_per_customer: int | None = None,
    require_payment_method: bool = False,
    actor: str = "system",
) -> Plan:
    """Create a plan with a unit price per unit-hour for each priced dimension."""
    get_service(session, provider_id, service_id)
    currency = validate_currency(currency)
    parsed = parse_prices(prices, known_dimension_keys(session, provider_id))
    _check_quota_value(max_instances_per_customer)
    plan = Plan(
        id=new_id("plan"),
        provider_id=provider_id,
        service_id=service_id,
        name=name.strip(),
        currency=currency,
        max_instances_per_customer=max_instances_per_customer,
        require_payment_method=require_payment_method,
        created_at=now,
    )
    session.add(plan)
    _flush_unique(session, f"the service already has a plan named '{name}'", "plan_exists")
    for key, unit_price in parsed.items():
        session.add(
            PlanPrice(
                provider_id=provider_id,
                plan_id=plan.id,
                dimension_key=key,
                unit_price=unit_price,
                effective_from=BEGINNING,
                applies_to=PriceScope.all_subscriptions,
                created_at=now,
            )
        )
    session.flush()
    session.refresh(plan, ["prices"])
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="plan.created",
        object_type="plan",
        object_id=plan.id,
        before=None,
        after=plan_snapshot(plan),
        now=now,
    )
    return plan


def plan_snapshot(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "currency": plan.currency,
        "max_instances_per_customer": plan.max_instances_per_customer,
        "require_payment_method": plan.require_payment_method,
        "prices": current_prices(plan),
    }


def _check_quota_value(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise InvalidInput(
            "max_instances_per_customer must be 0 or more (null = unlimited)", code="invalid_quota"
        )


def update_plan(
    session: Session,
    provider_id: str,
    plan_id: str,
    *,
    actor: str,
    now: datetime,
    name: str | None = None,
    max_instances_per_customer: int | None = UNSET,
    require_payment_method: bool | None = None,
) -> Plan:
    """Rename a plan or change its quotas; a limit below what customers already run is refused."""
    plan = get_plan(session, provider_id, plan_id, lock=True)
    before = plan_snapshot(plan)
    if name is not None:
        plan.name = name.strip()
    if max_instances_per_customer is not UNSET:
        _check_quota_value(max_instances_per_customer)
        if max_instances_per_customer is not None:
            busiest = _busiest_customer_count(session, provider_id, plan_id)
            if busiest > max_instances_per_customer:
                raise Conflict(
                    f"a customer already runs {busiest} instances on this plan; "
                    f"terminate some before lowering the limit to {max_instances_per_customer}",
                    code="quota_below_usage",
                    limit=max_instances_per_customer,
                    current=busiest,
                )
        plan.max_instances_per_customer = max_instances_per_customer
    if require_payment_method is not None:
        plan.require_payment_method = require_payment_method
    _flush_unique(session, f"the service already has a plan named '{name}'", "plan_exists")
    after = plan_snapshot(plan)
    if after != before:
        audit.record(
            session,
            provider_id,
            actor=actor,
            action="plan.updated",
            object_type="plan",
            object_id=plan.id,
            before=before,
            after=after,
            now=now,
        )
    return plan


def _busiest_customer_count(session: Session, provider_id: str, plan_id: str) -> int:
    per_customer = (
        select(func.count().label("n"))
        .where(
            Instance.provider_id == provider_id,
            Instance.plan_id == plan_id,
            Instance.status == InstanceStatus.running,
        )
        .group_by(Instance.customer_id)
        .subquery()
    )
    return int(session.scalar(select(func.coalesce(func.max(per_customer.c.n), 0))) or 0)


def add_price_version(
    session: Session,
    provider_id: str,
    plan_id: str,
    *,
    prices: dict[str, Any],
    effective_from: datetime,
    applies_to: PriceScope,
    actor: str,
    now: datetime,
) -> list[PlanPrice]:
    """New unit prices for some dimensions of a plan, in force from an hour on."""
    plan = get_plan(session, provider_id, plan_id, lock=True)
    effective_from = require_hour(effective_from, "effective_from")
    ensure_open(session, provider_id, effective_from, "a price version starting at")
    if not prices:
        raise InvalidInput("give at least one dimension price", code="no_prices")
    parsed = parse_prices(prices, known_dimension_keys(session, provider_id))
    before = plan_snapshot(plan)
    taken = {(p.dimension_key, p.effective_from) for p in plan.prices}
    clashes = sorted(key for key in parsed if (key, effective_from) in taken)
    if clashes:
        raise Conflict(
            f"a price for {', '.join(clashes)} already starts at {effective_from.isoformat()}",
            code="price_version_exists",
        )
    versions = [
        PlanPrice(
            provider_id=provider_id,
            plan_id=plan.id,
            dimension_key=key,
            unit_price=unit_price,
            effective_from=effective_from,
            applies_to=applies_to,
            created_at=now,
        )
        for key, unit_price in parsed.items()
    ]
    session.add_all(versions)
    session.flush()
    session.refresh(plan, ["prices"])
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="plan.price_version_added",
        object_type="plan",
        object_id=plan.id,
        before=before,
        after={
            **plan_snapshot(plan),
            "version": {
                "effective_from": effective_from,
                "applies_to": applies_to.value,
                "prices": parsed,
            },
        },
        now=now,
    )
    return versions


def get_plan(session: Session, provider_id: str, plan_id: str, *, lock: bool = False) -> Plan:
    """Load one of the provider's plans."""
    query = select(Plan).where(Plan.provider_id == provider_id, Plan.id == plan_id)
    plan = session.scalar(query.with_for_update() if lock else query)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found", code="plan_not_found")
    return plan


def find_plan(session: Session, provider_id: str, service_id: str, name: str) -> Plan | None:
    return session.scalar(
        select(Plan).where(
            Plan.provider_id == provider_id, Plan.service_id == service_id, Plan.name == name
        )
    )


def list_plans(
    session: Session, provider_id: str, *, service_id: str | None = None
) -> Sequence[Plan]:
    """All plans of the provider, optionally of one service."""
    query = select(Plan).where(Plan.provider_id == provider_id)
    if service_id is not None:
        query = query.where(Plan.service_id == service_id)
    return session.scalars(query.order_by(Plan.created_at, Plan.name)).all()


def current_prices(plan: Plan, *, at: datetime | None = None) -> dict[str, Decimal]:
    """Per dimension, the version for all subscriptions in force at ``at`` (default: latest)."""
    latest: dict[str, PlanPrice] = {}
    for price in plan.prices:
        if at is not None and price.effective_from > at:
            continue
        held = latest.get(price.dimension_key)
        if held is None or price.effective_from > held.effective_from:
            latest[price.dimension_key] = price
    return {key: price.unit_price for key, price in sorted(latest.items())}


def price_versions(plan: Plan) -> list[PlanPrice]:
    return sorted(plan.prices, key=lambda p: (p.effective_from, p.dimension_key))


def _flush_unique(session: Session, message: str, code: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(message, code=code) from exc
