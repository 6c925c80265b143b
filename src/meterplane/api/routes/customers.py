from typing import Any

from fastapi import APIRouter

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.customers import service
from meterplane.customers.models import Customer, Instance, Subscription
from meterplane.customers.schemas import (
    CustomerIn,
    CustomerOut,
    InstanceIn,
    InstanceOut,
    SubscriptionIn,
    SubscriptionOut,
)

router = APIRouter(prefix="/v1", tags=["customers"])


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut.model_validate(customer, from_attributes=True)


def subscription_out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscription, from_attributes=True)


def instance_out(instance: Instance) -> InstanceOut:
    return InstanceOut.model_validate(instance, from_attributes=True)


@router.post("/customers", status_code=201)
def create_customer(body: CustomerIn, caller: Admin, factory: Factory, now: Now) -> CustomerOut:
    with unit_of_work(factory) as session:
        customer = service.create_customer(
            session,
            caller.provider_id,
            name=body.name,
            email=str(body.email),
            external_billing_id=body.external_billing_id,
            now=now,
        )
        return customer_out(customer)


@router.get("/customers")
def list_customers(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        return {
            "data": [customer_out(c) for c in service.list_customers(session, caller.provider_id)]
        }


@router.get("/customers/{customer_id}")
def get_customer(customer_id: str, caller: Admin, factory: Factory) -> CustomerOut:
    with unit_of_work(factory) as session:
        return customer_out(service.get_customer(session, caller.provider_id, customer_id))


@router.post("/subscriptions", status_code=201)
def create_subscription(
    body: SubscriptionIn, caller: Admin, factory: Factory, now: Now
) -> SubscriptionOut:
    with unit_of_work(factory) as session:
        subscription = service.create_subscription(
            session, caller.provider_id, customer_id=body.customer_id, plan_id=body.plan_id, now=now
        )
        return subscription_out(subscription)


@router.get("/subscriptions")
def list_subscriptions(caller: Admin, factory: Factory) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_subscriptions(session, caller.provider_id)
        return {"data": [subscription_out(s) for s in items]}


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, caller: Admin, factory: Factory) -> SubscriptionOut:
    with unit_of_work(factory) as session:
        return subscription_out(
            service.get_subscription(session, caller.provider_id, subscription_id)
        )


@router.post("/instances", status_code=201)
def register_instance(body: InstanceIn, caller: Admin, factory: Factory, now: Now) -> InstanceOut:
    with unit_of_work(factory) as session:
        instance = service.register_instance(
            session,
            caller.provider_id,
            instance_id=body.id,
            subscription_id=body.subscription_id,
            cloud=body.cloud,
            region=body.region,
            external_billing_id=body.external_billing_id,
            now=now,
        )
        return instance_out(instance)


@router.get("/instances")
def list_instances(
    caller: Admin, factory: Factory, customer_id: str | None = None
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_instances(session, caller.provider_id, customer_id=customer_id)
        return {"data": [instance_out(i) for i in items]}


@router.get("/instances/{instance_id}")
def get_instance(instance_id: str, caller: Admin, factory: Factory) -> InstanceOut:
    with unit_of_work(factory) as session:
        return instance_out(service.get_instance(session, caller.provider_id, instance_id))


@router.post("/instances/{instance_id}/terminate")
def terminate_instance(instance_id: str, caller: Admin, factory: Factory, now: Now) -> InstanceOut:
    with unit_of_work(factory) as session:
        return instance_out(
            service.terminate_instance(session, caller.provider_id, instance_id, now=now)
        )
