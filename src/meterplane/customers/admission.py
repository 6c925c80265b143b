"""Admission: may this customer get one more instance on this plan? (DESIGN, "Admission")"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.catalog.models import Plan
from meterplane.customers.models import (
    Customer,
    Instance,
    InstanceStatus,
    Subscription,
    SubscriptionStatus,
)
from meterplane.kit.errors import Conflict, NotFound


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str | None = None
    message: str | None = None
    limit: int | None = None
    current: int | None = None

    def raise_if_denied(self) -> None:
        if not self.allowed:
            assert self.code is not None and self.message is not None
            details = {
                k: v for k, v in (("limit", self.limit), ("current", self.current)) if v is not None
            }
            raise Conflict(self.message, code=self.code, **details)


ALLOWED = Decision(allowed=True)


def lock_customer(session: Session, provider_id: str, customer_id: str) -> Customer:
    """Lock the customer row: concurrent admissions for one customer run one after another."""
    customer = session.scalar(
        select(Customer)
        .where(Customer.provider_id == provider_id, Customer.id == customer_id)
        .with_for_update()
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
    return customer


def decide(
    session: Session,
    provider_id: str,
    customer: Customer,
    plan_id: str,
    *,
    subscription: Subscription | None = None,
    excluding_instance_pk: int | None = None,
) -> Decision:
    """May ``customer`` have one more instance on ``plan_id``? The caller holds the lock."""
    plan = session.scalar(select(Plan).where(Plan.provider_id == provider_id, Plan.id == plan_id))
    if plan is None:
        return Decision(False, "unknown_plan", f"plan {plan_id} does not exist")
    if subscription is None:
        subscription = session.scalar(
            select(Subscription)
            .where(
                Subscription.provider_id == provider_id,
                Subscription.customer_id == customer.id,
                Subscription.plan_id == plan_id,
                Subscription.status == SubscriptionStatus.active,
            )
            .limit(1)
        )
    if subscription is None or subscription.status != SubscriptionStatus.active:
        return Decision(
            False,
            "subscription_inactive",
            f"customer {customer.id} has no active subscription to plan {plan.name}",
        )
    if plan.require_payment_method and not customer.default_payment_method:
        return Decision(
            False,
            "payment_method_required",
            f"plan {plan.name} requires a payment method; the customer has none on file",
        )
    if plan.max_instances_per_customer is not None:
        count_query = select(func.count()).where(
            Instance.provider_id == provider_id,
            Instance.customer_id == customer.id,
            Instance.plan_id == plan_id,
            Instance.status == InstanceStatus.running,
        )
        if excluding_instance_pk is not None:
            count_query = count_query.where(Instance.pk != excluding_instance_pk)
        current = int(session.scalar(count_query) or 0)
        if current >= plan.max_instances_per_customer:
            return Decision(
                False,
                "quota_exceeded",
                f"plan {plan.name} allows {plan.max_instances_per_customer} running instances "
                f"per customer; the customer has {current}",
                limit=plan.max_instances_per_customer,
                current=current,
            )
    return ALLOWED


def check_admission(session: Session, provider_id: str, customer_id: str, plan_id: str) -> Decision:
    """What ``POST /v1/admission`` answers; registering an instance applies the same rules."""
    customer = lock_customer(session, provider_id, customer_id)
    return decide(session, provider_id, customer, plan_id)
