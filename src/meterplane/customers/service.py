"""Customers, their subscriptions and their instances."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.catalog.service import get_plan
from meterplane.customers.models import (
    Customer,
    Instance,
    InstanceStatus,
    Subscription,
    SubscriptionStatus,
)
from meterplane.kit.errors import Conflict, NotFound
from meterplane.kit.ids import new_id


def create_customer(
    session: Session,
    provider_id: str,
    *,
    name: str,
    email: str,
    external_billing_id: str | None,
    now: datetime,
) -> Customer:
    """Create a customer of the provider."""
    customer = Customer(
        id=new_id("cus"),
        provider_id=provider_id,
        name=name.strip(),
        email=email,
        external_billing_id=external_billing_id,
        created_at=now,
    )
    session.add(customer)
    session.flush()
    return customer


def get_customer(session: Session, provider_id: str, customer_id: str) -> Customer:
    """Load one of the provider's customers."""
    customer = session.scalar(
        select(Customer).where(Customer.provider_id == provider_id, Customer.id == customer_id)
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
    return customer


def list_customers(session: Session, provider_id: str) -> Sequence[Customer]:
    """All customers of the provider."""
    return session.scalars(
        select(Customer).where(Customer.provider_id == provider_id).order_by(Customer.created_at)
    ).all()


def create_subscription(
    session: Session, provider_id: str, *, customer_id: str, plan_id: str, now: datetime
) -> Subscription:
    """Put a customer on a plan."""
    get_customer(session, provider_id, customer_id)
    get_plan(session, provider_id, plan_id)
    subscription = Subscription(
        id=new_id("sub"),
        provider_id=provider_id,
        customer_id=customer_id,
        plan_id=plan_id,
        status=SubscriptionStatus.active,
        created_at=now,
    )
    session.add(subscription)
    session.flush()
    return subscription


def get_subscription(session: Session, provider_id: str, subscription_id: str) -> Subscription:
    """Load one of the provider's subscriptions."""
    subscription = session.scalar(
        select(Subscription).where(
            Subscription.provider_id == provider_id, Subscription.id == subscription_id
        )
    )
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} not found", code="subscription_not_found")
    return subscription


def list_subscriptions(session: Session, provider_id: str) -> Sequence[Subscription]:
    """All subscriptions of the provider."""
    return session.scalars(
        select(Subscription)
        .where(Subscription.provider_id == provider_id)
        .order_by(Subscription.created_at)
    ).all()


def register_instance(
    session: Session,
    provider_id: str,
    *,
    instance_id: str,
    subscription_id: str,
    cloud: str,
    region: str,
    external_billing_id: str | None,
    now: datetime,
) -> Instance:
    """Register an instance under the provider's own identifier."""
    subscription = get_subscription(session, provider_id, subscription_id)
    if subscription.status is not SubscriptionStatus.active:
        raise Conflict(
            f"subscription {subscription_id} is {subscription.status}",
            code="subscription_inactive",
        )
    existing = session.scalar(
        select(Instance).where(Instance.provider_id == provider_id, Instance.id == instance_id)
    )
    if existing is not None:
        raise Conflict(f"instance {instance_id} is already registered", code="instance_exists")
    instance = Instance(
        provider_id=provider_id,
        id=instance_id,
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        cloud=cloud,
        region=region,
        external_billing_id=external_billing_id,
        status=InstanceStatus.running,
        created_at=now,
    )
    session.add(instance)
    session.flush()
    return instance


def get_instance(session: Session, provider_id: str, instance_id: str) -> Instance:
    """Load one of the provider's instances by the provider's identifier."""
    instance = session.scalar(
        select(Instance).where(Instance.provider_id == provider_id, Instance.id == instance_id)
    )
    if instance is None:
        raise NotFound(f"instance {instance_id} not found", code="instance_not_found")
    return instance


def list_instances(
    session: Session, provider_id: str, *, customer_id: str | None = None
) -> Sequence[Instance]:
    """The provider's instances, optionally of one customer."""
    query = select(Instance).where(Instance.provider_id == provider_id)
    if customer_id is not None:
        query = query.where(Instance.customer_id == customer_id)
    return session.scalars(query.order_by(Instance.pk)).all()


def terminate_instance(
    session: Session, provider_id: str, instance_id: str, *, now: datetime
) -> Instance:
    """Stop billing an instance from now on; terminating twice keeps the first time."""
    instance = get_instance(session, provider_id, instance_id)
    if instance.status is InstanceStatus.running:
        instance.status = InstanceStatus.terminated
        instance.terminated_at = now
    return instance
