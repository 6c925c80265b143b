from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from meterplane.api.deps import Admin, Factory, Now, unit_of_work
from meterplane.customers import service
from meterplane.customers.admission import check_admission
from meterplane.customers.models import Customer, Instance, Subscription
from meterplane.customers.schemas import (
    AdmissionIn,
    AdmissionOut,
    ChangePlanIn,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    InstanceIn,
    InstanceOut,
    PlanPeriodOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPriceOut,
    SubscriptionPricesIn,
)
from meterplane.invoicing.schemas import UpcomingInvoiceOut
from meterplane.invoicing.settings import set_customer_billing
from meterplane.invoicing.upcoming import upcoming_invoice

router = APIRouter(prefix="/v1", tags=["customers"])


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut.model_validate(customer, from_attributes=True)


def subscription_out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscription, from_attributes=True)


def instance_out(session: Session, instance: Instance) -> InstanceOut:
    history = [
        PlanPeriodOut(plan_id=p.plan_id, effective_from=p.effective_from)
        for p in service.plan_history(session, instance)
    ]
    return InstanceOut(
        id=instance.id,
        subscription_id=instance.subscription_id,
        customer_id=instance.customer_id,
        cloud=instance.cloud,
        region=instance.region,
        external_billing_id=instance.external_billing_id,
        plan_id=instance.plan_id,
        plan_history=history,
        status=instance.status,
        created_at=instance.created_at,
        terminated_at=instance.terminated_at,
    )


@router.post("/customers", status_code=201)
def create_customer(body: CustomerIn, caller: Admin, factory: Factory, now: Now) -> CustomerOut:
    with unit_of_work(factory) as session:
        customer = service.create_customer(
            session,
            caller.provider_id,
            name=body.name,
            email=str(body.email),
            external_billing_id=body.external_billing_id,
            address=body.address,
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
        return instance_out(session, instance)


@router.get("/instances")
def list_instances(
    caller: Admin, factory: Factory, customer_id: str | None = None
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        items = service.list_instances(session, caller.provider_id, customer_id=customer_id)
        return {"data": [instance_out(session, i) for i in items]}


@router.get("/instances/{instance_id}")
def get_instance(instance_id: str, caller: Admin, factory: Factory) -> InstanceOut:
    with unit_of_work(factory) as session:
        return instance_out(session, service.get_instance(session, caller.provider_id, instance_id))


@router.post("/instances/{instance_id}/terminate")
def terminate_instance(instance_id: str, caller: Admin, factory: Factory, now: Now) -> InstanceOut:
    with unit_of_work(factory) as session:
        return instance_out(
            session, service.terminate_instance(session, caller.provider_id, instance_id, now=now)
        )


@router.patch("/customers/{customer_id}")
def update_customer(
    customer_id: str, body: CustomerPatch, caller: Admin, factory: Factory, now: Now
) -> CustomerOut:
    """Billing details: address, tax rate, payment terms override, default payment method."""
    fields = body.model_fields_set
    billing = {k: getattr(body, k) for k in fields if k != "default_payment_method"}
    with unit_of_work(factory) as session:
        if "default_payment_method" in fields:
            service.set_default_payment_method(
                session,
                caller.provider_id,
                customer_id,
                body.default_payment_method,
                actor=caller.actor,
                now=now,
            )
        if billing:
            set_customer_billing(
                session, caller.provider_id, customer_id, billing, actor=caller.actor, now=now
            )
        return customer_out(service.get_customer(session, caller.provider_id, customer_id))


@router.get("/customers/{customer_id}/upcoming-invoice", tags=["invoices"])
def get_upcoming_invoice(
    customer_id: str, caller: Admin, factory: Factory, now: Now
) -> UpcomingInvoiceOut:
    """The current period to date, priced hour by hour exactly as the invoice will be."""
    with unit_of_work(factory) as session:
        return upcoming_invoice(session, caller.provider_id, customer_id, now=now)


@router.post("/subscriptions/{subscription_id}/prices", status_code=201)
def add_subscription_prices(
    subscription_id: str, body: SubscriptionPricesIn, caller: Admin, factory: Factory, now: Now
) -> dict[str, Any]:
    """Negotiated prices for this subscription, overriding its plan on [from, to)."""
    with unit_of_work(factory) as session:
        service.add_subscription_prices(
            session,
            caller.provider_id,
            subscription_id,
            prices=body.prices,
            effective_from=body.effective_from,
            effective_to=body.effective_to,
            actor=caller.actor,
            now=now,
        )
        return _subscription_prices(session, caller.provider_id, subscription_id)


@router.get("/subscriptions/{subscription_id}/prices")
def list_subscription_prices(
    subscription_id: str, caller: Admin, factory: Factory
) -> dict[str, Any]:
    with unit_of_work(factory) as session:
        return _subscription_prices(session, caller.provider_id, subscription_id)


def _subscription_prices(
    session: Session, provider_id: str, subscription_id: str
) -> dict[str, Any]:
    items = service.list_subscription_prices(session, provider_id, subscription_id)
    return {
        "data": [
            SubscriptionPriceOut.model_validate(item, from_attributes=True).model_dump(
                mode="json", by_alias=True
            )
            for item in items
        ]
    }


@router.post("/subscriptions/{subscription_id}/cancel")
def cancel_subscription(
    subscription_id: str, caller: Admin, factory: Factory, now: Now
) -> SubscriptionOut:
    with unit_of_work(factory) as session:
        return subscription_out(
            service.cancel_subscription(
                session, caller.provider_id, subscription_id, actor=caller.actor, now=now
            )
        )


@router.post("/instances/{instance_id}/change-plan")
def change_instance_plan(
    instance_id: str, body: ChangePlanIn, caller: Admin, factory: Factory, now: Now
) -> InstanceOut:
    """Move the instance to another plan of its service; each hour bills on its own plan."""
    with unit_of_work(factory) as session:
        instance = service.change_instance_plan(
            session,
            caller.provider_id,
            instance_id,
            plan_id=body.plan_id,
            effective_from=body.effective_from,
            actor=caller.actor,
            now=now,
        )
        return instance_out(session, instance)


@router.post("/admission", tags=["admission"], response_model_exclude_none=True)
def admission(body: AdmissionIn, caller: Admin, factory: Factory) -> AdmissionOut:
    """May this customer get one more instance on this plan? Asked before creating one."""
    with unit_of_work(factory) as session:
        decision = check_admission(session, caller.provider_id, body.customer_id, body.plan_id)
        return AdmissionOut(
            allowed=decision.allowed,
            code=decision.code,
            message=decision.message,
            limit=decision.limit,
            current=decision.current,
        )
