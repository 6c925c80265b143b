"""A provider's billing settings and tax rates."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meterplane.audit import service as audit
from meterplane.customers.service import get_customer
from meterplane.invoicing.models import TaxRate
from meterplane.invoicing.numbering import validate_format
from meterplane.kit.errors import NotFound
from meterplane.kit.ids import new_id
from meterplane.tenancy.models import Provider, ZeroUsagePolicy
from meterplane.tenancy.service import get_provider

SETTING_FIELDS = (
    "close_grace_hours",
    "auto_approve_after_days",
    "payment_terms_days",
    "invoice_prefix",
    "invoice_number_format",
    "zero_usage_policy",
)


def settings_snapshot(provider: Provider) -> dict[str, Any]:
    return {name: getattr(provider, name) for name in SETTING_FIELDS}


def update_settings(
    session: Session, provider_id: str, changes: dict[str, Any], *, actor: str, now: datetime
) -> Provider:
    """Change billing settings; ``auto_approve_after_days: None`` means manual approval."""
    provider = get_provider(session, provider_id)
    before = settings_snapshot(provider)
    for name, value in changes.items():
        if name not in SETTING_FIELDS:
            raise KeyError(name)
        if name == "invoice_number_format" and value is not None:
            validate_format(value)
        if name == "zero_usage_policy" and value is not None:
            value = ZeroUsagePolicy(value)
        if value is None and name != "auto_approve_after_days":
            continue
        setattr(provider, name, value)
    after = settings_snapshot(provider)
    if after != before:
        audit.record(
            session,
            provider_id,
            actor=actor,
            action="provider.settings_updated",
            object_type="provider",
            object_id=provider_id,
            before=before,
            after=after,
            now=now,
        )
    return provider


def create_tax_rate(
    session: Session,
    provider_id: str,
    *,
    name: str,
    percentage: Decimal,
    jurisdiction: str | None,
    actor: str,
    now: datetime,
) -> TaxRate:
    """Define a tax rate (e.g. "VAT DE", 19%)."""
    rate = TaxRate(
        id=new_id("txr"),
        provider_id=provider_id,
        name=name.strip(),
        percentage=percentage,
        jurisdiction=jurisdiction,
        created_at=now,
    )
    session.add(rate)
    session.flush()
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="tax_rate.created",
        object_type="tax_rate",
        object_id=rate.id,
        before=None,
        after={"name": rate.name, "percentage": percentage, "jurisdiction": jurisdiction},
        now=now,
    )
    return rate


def list_tax_rates(session: Session, provider_id: str) -> Sequence[TaxRate]:
    return session.scalars(
        select(TaxRate).where(TaxRate.provider_id == provider_id).order_by(TaxRate.created_at)
    ).all()


def get_tax_rate(session: Session, provider_id: str, tax_rate_id: str) -> TaxRate:
    rate = session.scalar(
        select(TaxRate).where(TaxRate.provider_id == provider_id, TaxRate.id == tax_rate_id)
    )
    if rate is None:
        raise NotFound(f"tax rate {tax_rate_id} not found", code="tax_rate_not_found")
    return rate


def set_customer_billing(
    session: Session,
    provider_id: str,
    customer_id: str,
    changes: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> None:
    """Tax rate, payment terms override and address of a customer."""
    customer = get_customer(session, provider_id, customer_id)
    before = {k: getattr(customer, k) for k in changes}
    if changes.get("tax_rate_id") is not None:
        get_tax_rate(session, provider_id, changes["tax_rate_id"])
    for name, value in changes.items():
        setattr(customer, name, value)
    audit.record(
        session,
        provider_id,
        actor=actor,
        action="customer.billing_updated",
        object_type="customer",
        object_id=customer_id,
        before=before,
        after=dict(changes),
        now=now,
    )
