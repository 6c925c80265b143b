"""Services and plans of a provider's catalogue."""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from meterplane.catalog.models import Dimension, Plan, PlanPrice, Service
from meterplane.kit.errors import Conflict, InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.kit.money import validate_currency

# Initial plan prices are in force from the start of time; later versions come with issue 4.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def create_service(session: Session, provider_id: str, name: str, *, now: datetime) -> Service:
    """Create a service (a provider's product)."""
    service = Service(id=new_id("svc"), provider_id=provider_id, name=name.strip(), created_at=now)
    session.add(service)
    _flush_unique(session, f"a service named '{name}' already exists", "service_exists")
    return service


def get_service(session: Session, provider_id: str, service_id: str) -> Service:
    """Load one of the provider's services."""
    service = session.scalar(
        select(Service).where(Service.provider_id == provider_id, Service.id == service_id)
    )
    if service is None:
        raise NotFound(f"service {service_id} not found", code="service_not_found")
    return service


def list_services(session: Session, provider_id: str) -> Sequence[Service]:
    """All services of the provider."""
    return session.scalars(
        select(Service).where(Service.provider_id == provider_id).order_by(Service.created_at)
    ).all()


def known_dimension_keys(session: Session, provider_id: str) -> set[str]:
    """Preset dimensions plus the provider's own."""
    return set(
        session.scalars(
            select(Dimension.key).where(
                (Dimension.provider_id.is_(None)) | (Dimension.provider_id == provider_id)
            )
        )
    )


def create_plan(
    session: Session,
    provider_id: str,
    *,
    service_id: str,
    name: str,
    currency: str,
    prices: dict[str, Decimal],
    now: datetime,
) -> Plan:
    """Create a plan with a unit price per unit-hour for each priced dimension."""
    get_service(session, provider_id, service_id)
    currency = validate_currency(currency)
    unknown = sorted(set(prices) - known_dimension_keys(session, provider_id))
    if unknown:
        raise InvalidInput(f"unknown dimension(s): {', '.join(unknown)}", code="unknown_dimension")
    plan = Plan(
        id=new_id("plan"),
        provider_id=provider_id,
        service_id=service_id,
        name=name.strip(),
        currency=currency,
        created_at=now,
    )
    session.add(plan)
    _flush_unique(session, f"the service already has a plan named '{name}'", "plan_exists")
    for key, unit_price in sorted(prices.items()):
        session.add(
            PlanPrice(
                provider_id=provider_id,
                plan_id=plan.id,
                dimension_key=key,
                unit_price=unit_price,
                effective_from=BEGINNING,
            )
        )
    session.flush()
    session.refresh(plan, ["prices"])
    return plan


def get_plan(session: Session, provider_id: str, plan_id: str) -> Plan:
    """Load one of the provider's plans."""
    plan = session.scalar(select(Plan).where(Plan.provider_id == provider_id, Plan.id == plan_id))
    if plan is None:
        raise NotFound(f"plan {plan_id} not found", code="plan_not_found")
    return plan


def list_plans(session: Session, provider_id: str) -> Sequence[Plan]:
    """All plans of the provider."""
    return session.scalars(
        select(Plan).where(Plan.provider_id == provider_id).order_by(Plan.created_at)
    ).all()


def current_prices(plan: Plan) -> dict[str, Decimal]:
    """The latest price version per dimension."""
    latest: dict[str, PlanPrice] = {}
    for price in plan.prices:
        held = latest.get(price.dimension_key)
        if held is None or price.effective_from > held.effective_from:
            latest[price.dimension_key] = price
    return {key: price.unit_price for key, price in sorted(latest.items())}


def _flush_unique(session: Session, message: str, code: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(message, code=code) from exc
