"""Customers, their subscriptions and their instances."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.catalog.models import Plan
from meterplane.catalog.pricing_input import parse_prices, require_hour
from meterplane.catalog.service import BEGINNING, get_plan, known_dimension_keys
from meterplane.customers.admission import decide, lock_customer
from meterplane.customers.models import (
    Customer,
    Instance,
    InstancePlanPeriod,
    InstanceStatus,
    Subscription,
    SubscriptionPrice,
    SubscriptionStatus,
)
from meterplane.invoicing.periods import ensure_open
from meterplane.kit.errors import Conflict, InvalidInput, NotFound
from meterplane.kit.ids import new_id
from meterplane.kit.time import hour_floor


def create_customer(
    session: Session,
    provider_id: str,
    *,
    name: str,
    email: str,
    external_billing_id: str | None,
    now: datetime,
    address: str | None = None,
) -> Customer:
    """Create a customer of the provider."""
    customer = Customer(
        id=new_id("cus"),
        provider_id=provider_id,
        name=name.strip(),
        email=email,
        external_billing_id=external_billing_id,
        address=address,
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
    """Put a customer on a plan; all of a customer's subscriptions bill in one currency."""
    get_customer(session, provider_id, customer_id)
    plan = get_plan(session, provider_id, plan_id)
    other_currency = session.scalar(
        select(Plan.currency)
        .join(Subscription, Subscription.plan_id == Plan.id)
        .where(
            Subscription.provider_id == provider_id,
            Subscription.customer_id == customer_id,
            Subscription.status == SubscriptionStatus.active,
            Plan.currency != plan.currency,
        )
        .limit(1)
    )
    if other_currency is not None:
        raise Conflict(
            f"the customer is billed in {other_currency}; plan {plan.name} bills in "
            f"{plan.currency}",
            code="currency_mismatch",
        )
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


def cancel_subscription(
    session: Session, provider_id: str, subscription_id: str, *, actor: str, now: datetime
) -> Subscription:
    """End a subscription; its instances must be terminated first."""
    subscription = get_subscription(session, provider_id, subscription_id)
    running = session.scalar(
        select(func.count()).where(
            Instance.provider_id == provider_id,
            Instance.subscription_id == subscription_id,
            Instance.status == InstanceStatus.running,
        )
    )
    if running:
        raise Conflict(
            f"subscription {subscription_id} still has {running} running instance(s)",
            code="subscription_has_running_instances",
        )
    if subscription.status == SubscriptionStatus.active:
        subscription.status = SubscriptionStatus.cancelled
        audit.record(
            session,
            provider_id,
            actor=actor,
            action="subscription.cancelled",
            object_type="subscription",
            object_id=subscription.id,
            before={"status": "active"},
            after={"status": "cancelled"},
            now=now,
        )
    return subscription


def add_subscription_prices(
    session: Session,
    provider_id: str,
    subscription_id: str,
    *,
    prices: dict[str, Any],
    effective_from: datetime,
    effective_to: datetime | None,
    actor: str,
    now: datetime,
) -> list[SubscriptionPrice]:
    """Negotiated prices for one subscription, overriding its plan on [from, to)."""
    subscription = get_subscription(session, provider_id, subscription_id)
    start = require_hour(effective_from, "effective_from")
    end = require_hour(effective_to, "effective_to") if effective_to is not None else None
    ensure_open(session, provider_id, start, "a negotiated price starting at")
    if end is not None and end <= start:
        raise InvalidInput("effective_to must be after effective_from", code="invalid_range")
    if not prices:
        raise InvalidInput("give at least one dimension price", code="no_prices")
    parsed = parse_prices(prices, known_dimension_keys(session, provider_id))
    existing = session.scalars(
        select(SubscriptionPrice).where(
            SubscriptionPrice.provider_id == provider_id,
            SubscriptionPrice.subscription_id == subscription.id,
            SubscriptionPrice.dimension_key.in_(parsed),
        )
    ).all()
    far = datetime.max.replace(tzinfo=UTC)
    for held in existing:
        if start < (held.effective_to or far) and held.effective_from < (end or far):
            raise Conflict(
                f"a negotiated price for {held.dimension_key} already covers part of that time "
                f"({held.effective_from.isoformat()} to "
                f"{held.effective_to.isoformat() if held.effective_to else 'open end'})",
                code="override_overlaps",
            )
    overrides = [
        SubscriptionPrice(
            provider_id=provider_id,
            subscription_id=subscription.id,
            dimension_key=key,
            unit_price=price,
            effective_from=start,
            effective_to=end,
            created_at=now,
        )
        for key, price in parsed.items()
    ]
    session.add_all(overrides)
    session.flush()
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="subscription.prices_added",
        object_type="subscription",
        object_id=subscription.id,
        before=None,
        after={"prices": parsed, "effective_from": start, "effective_to": end},
        now=now,
    )
    return overrides


def list_subscription_prices(
    session: Session, provider_id: str, subscription_id: str
) -> Sequence[SubscriptionPrice]:
    get_subscription(session, provider_id, subscription_id)
    return session.scalars(
        select(SubscriptionPrice)
        .where(
            SubscriptionPrice.provider_id == provider_id,
            SubscriptionPrice.subscription_id == subscription_id,
        )
        .order_by(SubscriptionPrice.effective_from, SubscriptionPrice.dimension_key)
    ).all()


def set_default_payment_method(
    session: Session,
    provider_id: str,
    customer_id: str,
    payment_method: str | None,
    *,
    actor: str,
    now: datetime,
) -> Customer:
    """Record (or clear) the customer's default payment method."""
    customer = get_customer(session, provider_id, customer_id)
    before = {"default_payment_method": customer.default_payment_method}
    customer.default_payment_method = payment_method
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="customer.payment_method_set",
        object_type="customer",
        object_id=customer.id,
        before=before,
        after={"default_payment_method": payment_method},
        now=now,
    )
    return customer


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
    """Register an instance under the provider's own identifier, if admission allows it."""
    subscription = get_subscription(session, provider_id, subscription_id)
    customer = lock_customer(session, provider_id, subscription.customer_id)
    existing = session.scalar(
        select(Instance).where(Instance.provider_id == provider_id, Instance.id == instance_id)
    )
    if existing is not None:
        raise Conflict(f"instance {instance_id} is already registered", code="instance_exists")
    decide(
        session, provider_id, customer, subscription.plan_id, subscription=subscription
    ).raise_if_denied()
    instance = Instance(
        provider_id=provider_id,
        id=instance_id,
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        plan_id=subscription.plan_id,
        cloud=cloud,
        region=region,
        external_billing_id=external_billing_id,
        status=InstanceStatus.running,
        created_at=now,
    )
    session.add(instance)
    session.flush()
    session.add(
        InstancePlanPeriod(
            provider_id=provider_id,
            instance_pk=instance.pk,
            plan_id=subscription.plan_id,
            effective_from=BEGINNING,
            created_at=now,
        )
    )
    session.flush()
    return instance


def change_instance_plan(
    session: Session,
    provider_id: str,
    instance_id: str,
    *,
    plan_id: str,
    effective_from: datetime | None,
    actor: str,
    now: datetime,
) -> Instance:
    """Move an instance to another plan of its service from an hour on (default: the next hour)."""
    instance = get_instance(session, provider_id, instance_id)
    customer = lock_customer(session, provider_id, instance.customer_id)
    if instance.status != InstanceStatus.running:
        raise Conflict(f"instance {instance_id} is terminated", code="instance_terminated")
    current_plan = get_plan(session, provider_id, instance.plan_id)
    target = get_plan(session, provider_id, plan_id)
    if target.id == current_plan.id:
        raise Conflict(
            f"instance {instance_id} is already on plan {target.name}", code="plan_unchanged"
        )
    if target.service_id != current_plan.service_id:
        raise Conflict(
            "an instance can only change to a plan of its own service", code="plan_in_other_service"
        )
    if target.currency != current_plan.currency:
        raise Conflict(
            f"plan {target.name} bills in {target.currency}, the instance's plan in "
            f"{current_plan.currency}",
            code="currency_mismatch",
        )
    start = (
        require_hour(effective_from, "effective_from")
        if effective_from
        else (hour_floor(now) + timedelta(hours=1))
    )
    ensure_open(session, provider_id, start, "a plan change at")
    later = session.scalar(
        select(InstancePlanPeriod.effective_from)
        .where(
            InstancePlanPeriod.instance_pk == instance.pk,
            InstancePlanPeriod.effective_from >= start,
        )
        .limit(1)
    )
    if later is not None:
        raise Conflict(
            f"the instance already has a plan change at {later.isoformat()}; changes must move "
            "forward in time",
            code="plan_change_out_of_order",
        )
    subscription = get_subscription(session, provider_id, instance.subscription_id)
    decide(
        session,
        provider_id,
        customer,
        target.id,
        subscription=subscription,
        excluding_instance_pk=instance.pk,
    ).raise_if_denied()
    before = {"plan_id": instance.plan_id}
    session.add(
        InstancePlanPeriod(
            provider_id=provider_id,
            instance_pk=instance.pk,
            plan_id=target.id,
            effective_from=start,
            created_at=now,
        )
    )
    instance.plan_id = target.id
    session.flush()
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="instance.plan_changed",
        object_type="instance",
        object_id=instance.id,
        before=before,
        after={"plan_id": target.id, "effective_from": start},
        now=now,
    )
    return instance


def plan_history(session: Session, instance: Instance) -> Sequence[InstancePlanPeriod]:
    return session.scalars(
        select(InstancePlanPeriod)
        .where(InstancePlanPeriod.instance_pk == instance.pk)
        .order_by(InstancePlanPeriod.effective_from)
    ).all()


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
