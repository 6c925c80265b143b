"""What an invoice says: usage lines for its period, adjustments for earlier periods, totals.

Adjustments (DESIGN rule 8): for each earlier closed period, the usage as rated now minus
everything already billed for it (on any invoice, voided ones included: a void settles it).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.catalog.models import Dimension
from meterplane.customers.models import Customer, Instance
from meterplane.invoicing.models import BillingPeriod, Invoice, InvoiceLine, TaxRate
from meterplane.invoicing.rating import InstanceLine, RatedLine, rate_customers
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.money import round_money
from meterplane.kit.time import add_months
from meterplane.metering.dimensions import PRESET_KEYS
from meterplane.metering.models import HourlyCustomUsage, HourlyUsage

# Samples older than the retention window are refused, so older periods cannot change.
ADJUSTMENT_LOOKBACK_MONTHS = 4
_UNSETTLED = (InvoiceStatus.draft, InvoiceStatus.pending_approval)


@dataclass(frozen=True)
class Line:
    kind: str  # "usage" | "adjustment"
    usage_period: str
    rated: RatedLine


@dataclass
class Content:
    customer_id: str
    currency: str | None
    lines: list[Line] = field(default_factory=list)
    instances: list[InstanceLine] = field(default_factory=list)
    tax_name: str | None = None
    tax_percentage: Decimal | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.rated.amount for line in self.lines), Decimal(0))

    @property
    def tax_amount(self) -> Decimal:
        """Subtotal × rate, rounded half-up once per invoice (DESIGN rule 6)."""
        if self.tax_percentage is None or self.currency is None:
            return Decimal(0)
        return round_money(self.subtotal * self.tax_percentage / 100, self.currency)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount


UsageTotals = dict[str, int]


def customers_with_usage(
    session: Session, provider_id: str, start: datetime, end: datetime
) -> dict[str, UsageTotals]:
    """Per customer, total scaled usage per dimension (presets and custom) on [start, end).

    Summed per instance in SQL, then per customer here: grouping by instance follows the
    (instance, hour) primary key without a sort, twice as fast as grouping by customer.
    """
    owner = dict(
        session.execute(
            select(Instance.pk, Instance.customer_id).where(Instance.provider_id == provider_id)
        ).all()
    )
    totals: dict[str, UsageTotals] = {}

    def add(instance_pk: int, key: str, value: int | None) -> None:
        bucket = totals.setdefault(owner[instance_pk], {})
        if value:
            bucket[key] = bucket.get(key, 0) + int(value)

    h = HourlyUsage
    for row in session.execute(
        select(h.instance_pk, *(func.sum(getattr(h, k)) for k in PRESET_KEYS))
        .where(h.provider_id == provider_id, h.hour_start >= start, h.hour_start < end)
        .group_by(h.instance_pk)
    ):
        for key, value in zip(PRESET_KEYS, row[1:], strict=True):
            add(row[0], key, value)
    c = HourlyCustomUsage
    keys = dict(
        session.execute(
            select(Dimension.id, Dimension.key).where(Dimension.provider_id == provider_id)
        ).all()
    )
    for instance_pk, dimension_id, value in session.execute(
        select(c.instance_pk, c.dimension_id, func.sum(c.value))
        .where(c.provider_id == provider_id, c.hour_start >= start, c.hour_start < end)
        .group_by(c.instance_pk, c.dimension_id)
    ):
        add(instance_pk, keys[dimension_id], value)
    return totals


def build_contents(
    session: Session,
    provider_id: str,
    customer_ids: Sequence[str],
    *,
    period: str,
    start: datetime,
    end: datetime,
    adjustment_candidates: dict[str, set[str]],
    exclude_invoice_ids: set[str],
) -> dict[str, Content]:
    """Invoice content for each customer; ``adjustment_candidates`` maps period → customers."""
    ratings = rate_customers(session, provider_id, customer_ids, start=start, end=end)
    contents = {
        cid: Content(
            customer_id=cid,
            currency=r.currency,
            lines=[Line("usage", period, line) for line in r.lines],
            instances=list(r.instances),
        )
        for cid, r in ratings.items()
    }
    for earlier, candidates in sorted(adjustment_candidates.items()):
        wanted = [cid for cid in customer_ids if cid in candidates]
        if wanted:
            _add_adjustments(session, provider_id, contents, wanted, earlier, exclude_invoice_ids)
    _apply_tax(session, provider_id, contents)
    return contents


def adjustment_candidates(
    session: Session, provider_id: str, *, before: datetime
) -> dict[str, set[str]]:
    """Customers whose usage in an earlier closed period differs from what its invoice saw."""
    closed = session.scalars(
        select(BillingPeriod).where(
            BillingPeriod.provider_id == provider_id,
            BillingPeriod.closed_at.is_not(None),
            BillingPeriod.end <= before,
            BillingPeriod.start >= add_months(before, -ADJUSTMENT_LOOKBACK_MONTHS),
        )
    ).all()
    result: dict[str, set[str]] = {}
    for billing_period in closed:
        usage = customers_with_usage(session, provider_id, billing_period.start, billing_period.end)
        seen: dict[str, UsageTotals] = {}
        for invoice in session.scalars(
            select(Invoice).where(
                Invoice.provider_id == provider_id, Invoice.period == billing_period.period
            )
        ):
            seen[invoice.customer_id] = snapshot(invoice.usage_snapshot)
        changed = {cid for cid, totals in usage.items() if totals != seen.get(cid, {})}
        if changed:
            result[billing_period.period] = changed
    return result


def _add_adjustments(
    session: Session,
    provider_id: str,
    contents: dict[str, Content],
    customer_ids: list[str],
    period: str,
    exclude_invoice_ids: set[str],
) -> None:
    billing_period = session.get(BillingPeriod, (provider_id, period))
    assert billing_period is not None
    unsettled = set(
        session.scalars(
            select(Invoice.customer_id).where(
                Invoice.provider_id == provider_id,
                Invoice.period == period,
                Invoice.status.in_(_UNSETTLED),
            )
        )
    )
    # An invoice of that period still under review is regenerated instead of adjusted.
    customer_ids = [cid for cid in customer_ids if cid not in unsettled]
    rated = rate_customers(
        session, provider_id, customer_ids, start=billing_period.start, end=billing_period.end
    )
    query = (
        select(InvoiceLine, Invoice.customer_id, Invoice.currency)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            InvoiceLine.provider_id == provider_id,
            InvoiceLine.usage_period == period,
            Invoice.customer_id.in_(customer_ids),
        )
    )
    if exclude_invoice_ids:
        query = query.where(Invoice.id.not_in(exclude_invoice_ids))
    billed: dict[tuple[str, str, str, Decimal], Decimal] = defaultdict(Decimal)
    described: dict[tuple[str, str, str, Decimal], tuple[RatedLine, str]] = {}
    for invoice_line, customer_id, currency in session.execute(query):
        key = (customer_id, invoice_line.plan_id, invoice_line.dimension, invoice_line.unit_price)
        billed[key] += invoice_line.quantity
        described[key] = (
            RatedLine(
                plan_id=invoice_line.plan_id,
                plan_name=invoice_line.plan_name,
                dimension=invoice_line.dimension,
                unit=invoice_line.unit,
                quantity=invoice_line.quantity,
                unit_price=invoice_line.unit_price,
                amount=invoice_line.amount,
            ),
            currency,
        )
    for customer_id in customer_ids:
        rating = rated[customer_id]
        content = contents[customer_id]
        content.currency = content.currency or rating.currency
        for line in rating.lines:
            key = (customer_id, line.plan_id, line.dimension, line.unit_price)
            delta = line.quantity - billed.pop(key, Decimal(0))
            if delta and rating.currency is not None:
                content.lines.append(
                    Line("adjustment", period, _for_quantity(line, delta, rating.currency))
                )
    # Billed at a price no usage carries any more (only a retroactive price change, which
    # closed periods refuse, could cause it): credited back rather than left standing.
    for key, quantity in billed.items():
        if quantity:
            line, currency = described[key]
            contents[key[0]].lines.append(
                Line("adjustment", period, _for_quantity(line, -quantity, currency))
            )


def _for_quantity(line: RatedLine, quantity: Decimal, currency: str) -> RatedLine:
    return RatedLine(
        plan_id=line.plan_id,
        plan_name=line.plan_name,
        dimension=line.dimension,
        unit=line.unit,
        quantity=quantity,
        unit_price=line.unit_price,
        amount=round_money(quantity * line.unit_price, currency),
    )


def _apply_tax(session: Session, provider_id: str, contents: dict[str, Content]) -> None:
    rates = dict(
        session.execute(
            select(Customer.id, TaxRate)
            .join(TaxRate, TaxRate.id == Customer.tax_rate_id)
            .where(Customer.provider_id == provider_id, Customer.id.in_(list(contents)))
        ).all()
    )
    for customer_id, content in contents.items():
        rate = rates.get(customer_id)
        if rate is not None:
            content.tax_name = rate.name
            content.tax_percentage = rate.percentage


def snapshot(totals: dict[str, int] | None) -> UsageTotals:
    """What the invoice saw, without zero entries, comparable with ``customers_with_usage``."""
    return {key: int(value) for key, value in (totals or {}).items() if value}
