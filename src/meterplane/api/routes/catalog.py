from typing import Any

from fastapi import APIRouter

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.catalog import service
from meterplane.catalog.models import Plan, Service
from meterplane.catalog.schemas import PlanIn, PlanOut, ServiceIn, ServiceOut

router = APIRouter(prefix="/v1", tags=["catalog"])


def service_out(item: Service) -> ServiceOut:
    return ServiceOut(id=item.id, name=item.name, created_at=item.created_at)


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        service_id=plan.service_id,
        name=plan.name,
        currency=plan.currency,
        prices=service.current_prices(plan),
        created_at=plan.created_at,
    )


@router.post("/services", status_code=201)
def create_service(body: ServiceIn, caller: Admin, factory: Factory, now: Now) -> ServiceOut:
    with unit_of_work(factory) as session:
        return service_out(service.create_service(session, caller.provider_id, body.name, now=now))


@router.get("/services")
def list_services(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_services(session, caller.provider_id)
        return {"data": [service_out(item) for item in items]}


@router.get("/services/{service_id}")
def get_service(service_id: str, caller: Admin, factory: Factory) -> ServiceOut:
    with unit_of_work(factory) as session:
        return service_out(service.get_service(session, caller.provider_id, service_id))


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
            now=now,
        )
        return plan_out(plan)


@router.get("/plans")
def list_plans(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        return {
            "data": [plan_out(plan) for plan in service.list_plans(session, caller.provider_id)]
        }


@router.get("/plans/{plan_id}")
def get_plan(plan_id: str, caller: Admin, factory: Factory) -> PlanOut:
    with unit_of_work(factory) as session:
        return plan_out(service.get_plan(session, caller.provider_id, plan_id))
