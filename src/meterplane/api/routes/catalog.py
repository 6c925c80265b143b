from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.audit import service as audit
from meterplane.catalog import service
from meterplane.catalog.models import Dimension, Plan, Service
from meterplane.catalog.schemas import (
    AuditEntryOut,
    DimensionIn,
    DimensionOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    PriceVersionIn,
    PriceVersionOut,
    ServiceIn,
    ServiceOut,
    ServicePatch,
)

router = APIRouter(prefix="/v1", tags=["catalog"])


def service_out(item: Service) -> ServiceOut:
    return ServiceOut(
        id=item.id,
        name=item.name,
        integrations=list(item.integrations),
        created_at=item.created_at,
    )


def plan_out(plan: Plan, now: datetime) -> PlanOut:
    return PlanOut(
        id=plan.id,
        service_id=plan.service_id,
        name=plan.name,
        currency=plan.currency,
        prices=service.current_prices(plan, at=now),
        price_versions=[
            PriceVersionOut(
                dimension=v.dimension_key,
                unit_price=v.unit_price,
                effective_from=v.effective_from,
                applies_to=v.applies_to,
            )
            for v in service.price_versions(plan)
        ],
        max_instances_per_customer=plan.max_instances_per_customer,
        require_payment_method=plan.require_payment_method,
        created_at=plan.created_at,
    )


def dimension_out(dimension: Dimension) -> DimensionOut:
    return DimensionOut(
        key=dimension.key,
        unit=dimension.unit,
        display_name=dimension.display_name,
        preset=dimension.provider_id is None,
    )


@router.post("/services", status_code=201)
def create_service(body: ServiceIn, caller: Admin, factory: Factory, now: Now) -> ServiceOut:
    with unit_of_work(factory) as session:
        return service_out(
            service.create_service(
                session,
                caller.provider_id,
                body.name,
                now=now,
                actor=caller.actor,
                integrations=body.integrations,
            )
        )


@router.get("/services")
def list_services(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_services(session, caller.provider_id)
        return {"data": [service_out(item) for item in items]}


@router.get("/services/{service_id}")
def get_service(service_id: str, caller: Admin, factory: Factory) -> ServiceOut:
    with unit_of_work(factory) as session:
        return service_out(service.get_service(session, caller.provider_id, service_id))


@router.patch("/services/{service_id}")
def update_service(
    service_id: str, body: ServicePatch, caller: Admin, factory: Factory, now: Now
) -> ServiceOut:
    with unit_of_work(factory) as session:
        return service_out(
            service.set_service_integrations(
                session,
                caller.provider_id,
                service_id,
                body.integrations,
                actor=caller.actor,
                now=now,
            )
        )


@router.post("/plans", status_code=201)
def create_plan(body: PlanIn, caller: Admin, factory: Factory, now: Now) -> PlanOut:
    with unit_of_work(factory) as session:
        plan = service.create_plan(
            session,
            caller.provider_id,
            service_id=body.service_id,
            name=body.name,
            currency=body.currency,
            prices=body.prices,
            max_instances_per_customer=body.max_instances_per_customer,
            require_payment_method=body.require_payment_method,
            actor=caller.actor,
            now=now,
        )
        return plan_out(plan, now)


@router.get("/plans")
def list_plans(
    caller: Admin, factory: Factory, now: Now, service_id: str | None = None
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        plans = service.list_plans(session, caller.provider_id, service_id=service_id)
        return {"data": [plan_out(plan, now) for plan in plans]}


@router.get("/plans/{plan_id}")
def get_plan(plan_id: str, caller: Admin, factory: Factory, now: Now) -> PlanOut:
    with unit_of_work(factory) as session:
        return plan_out(service.get_plan(session, caller.provider_id, plan_id), now)


@router.patch("/plans/{plan_id}")
def update_plan(
    plan_id: str, body: PlanPatch, caller: Admin, factory: Factory, now: Now
) -> PlanOut:
    """Rename, or change quotas; send ``max_instances_per_customer: null`` for unlimited."""
    changes: dict[str, Any] = {key: getattr(body, key) for key in body.model_fields_set}
    with unit_of_work(factory) as session:
        plan = service.update_plan(
            session, caller.provider_id, plan_id, actor=caller.actor, now=now, **changes
        )
        return plan_out(plan, now)


@router.post("/plans/{plan_id}/prices", status_code=201)
def add_price_version(
    plan_id: str, body: PriceVersionIn, caller: Admin, factory: Factory, now: Now
) -> PlanOut:
    """Add a price version in force from a whole hour."""
    with unit_of_work(factory) as session:
        service.add_price_version(
            session,
            caller.provider_id,
            plan_id,
            prices=body.prices,
            effective_from=body.effective_from,
            applies_to=body.applies_to,
            actor=caller.actor,
            now=now,
        )
        return plan_out(service.get_plan(session, caller.provider_id, plan_id), now)


@router.get("/dimensions")
def list_dimensions(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_dimensions(session, caller.provider_id)
        return {"data": [dimension_out(d) for d in items]}


@router.post("/dimensions", status_code=201)
def create_dimension(body: DimensionIn, caller: Admin, factory: Factory, now: Now) -> DimensionOut:
    with unit_of_work(factory) as session:
        return dimension_out(
            service.create_dimension(
                session,
                caller.provider_id,
                key=body.key,
                unit=body.unit,
                display_name=body.display_name,
                actor=caller.actor,
                now=now,
            )
        )


@router.get("/audit-log", tags=["audit"])
def audit_log(
    caller: Admin,
    factory: Factory,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: int | None = None,
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        entries = audit.list_entries(
            session,
            caller.provider_id,
            object_type=object_type,
            object_id=object_id,
            limit=limit,
            before_id=before,
        )
        return {
            "data": [AuditEntryOut.model_validate(e, from_attributes=True) for e in entries],
            "next_cursor": entries[-1].id if len(entries) == limit else None,
        }
