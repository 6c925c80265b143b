"""Invoice PDFs: the invoice, its provider's business profile and logo, rendered by WeasyPrint.

Loading (``load_document``, inside the caller's transaction) is kept apart from rendering
(``render_document``, CPU only) so a request need not hold a transaction while WeasyPrint runs.
Nothing outside the document is fetched: the logo travels as a ``data:`` URI and every other
URL scheme is refused.
"""

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

from meterplane.catalog.models import Dimension
from meterplane.customers.models import Customer
from meterplane.invoicing.models import Invoice
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.decimals import strip_zeros
from meterplane.kit.errors import NotFound
from meterplane.tenancy.models import Provider

LOCALE = "en_US"
_STATUS_LABELS = {
    InvoiceStatus.draft: "Draft",
    InvoiceStatus.pending_approval: "Pending approval",
    InvoiceStatus.issued: "Issued",
    InvoiceStatus.past_due: "Past due",
    InvoiceStatus.payment_failed: "Payment failed",
    InvoiceStatus.paid: "Paid",
    InvoiceStatus.uncollectible: "Uncollectible",
    InvoiceStatus.void: "Void",
}


@dataclass(frozen=True)
class Party:
    name: str
    address_lines: list[str]
    tax_id: str | None = None
    email: str | None = None
    external_billing_id: str | None = None


@dataclass(frozen=True)
class LineRow:
    plan: str
    dimension: str
    unit: str  # "core-hours": what the quantity counts
    per: str  # "core-hour": what the unit price is for
    adjustment: str | None  # "Adjustment for 2026-09"
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class InstanceRow:
    instance_id: str
    external_billing_id: str
    location: str
    dimension: str
    quantity: str
    amount: str


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything the template prints, already formatted."""

    invoice_id: str
    number: str | None
    title: str
    status: str
    watermark: str | None
    provider: Party
    logo_uri: str | None
    customer: Party
    currency: str
    period_label: str
    period_from: str  # "2026-10-01 00:00 UTC"
    period_to: str  # the exclusive end
    issued_on: str | None
    due_on: str | None
    lines: list[LineRow]
    subtotal: str
    tax_label: str | None
    tax_amount: str | None
    total: str
    instances: list[InstanceRow]

    @property
    def filename(self) -> str:
        """``INV-2026-000001.pdf``, or the invoice id while it has no number."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.number or self.invoice_id).strip("._")
        return f"{stem or self.invoice_id}.pdf"


def money(amount: Decimal, currency: str) -> str:
    """``$1,234.56``, ``¥1,235``; digits beyond the currency's minor unit are kept, not rounded."""
    return format_currency(strip_zeros(amount), currency, locale=LOCALE, decimal_quantization=False)


def quantity(value: Decimal) -> str:
    """Exact, with thousands separators: ``1,234.000000001``."""
    return format_decimal(strip_zeros(value), locale=LOCALE, decimal_quantization=False)


def percentage(value: Decimal) -> str:
    return f"{format_decimal(strip_zeros(value), locale=LOCALE, decimal_quantization=False)}%"


def _date(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return format_date(moment.astimezone(UTC).date(), "medium", locale=LOCALE)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines_of(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _unit_hours(unit: str) -> str:
    return f"{unit}-hours" if unit else "hours"


def _dimension_names(session: Session, provider_id: str, keys: set[str]) -> dict[str, str]:
    rows = session.execute(
        select(Dimension.key, Dimension.display_name, Dimension.provider_id).where(
            Dimension.key.in_(sorted(keys)),
            or_(Dimension.provider_id.is_(None), Dimension.provider_id == provider_id),
        )
    )
    names: dict[str, str] = {}
    # The provider's own dimension wins over a preset of the same key.
    for row in sorted(rows, key=lambda row: row.provider_id is not None):
        names[row.key] = row.display_name or row.key
    return names


def load_document(session: Session, provider_id: str, invoice_id: str) -> InvoiceDocument:
    """Read one of the provider's invoices and format what its PDF shows."""
    invoice = session.scalar(
        select(Invoice).where(Invoice.provider_id == provider_id, Invoice.id == invoice_id)
    )
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
    provider = session.get_one(Provider, provider_id)
    customer = session.get_one(Customer, invoice.customer_id)
    logo_uri = None
    if provider.logo_content_type is not None:
        logo = session.scalar(select(Provider.logo).where(Provider.id == provider_id))
        if logo:
            encoded = base64.b64encode(logo).decode("ascii")
            logo_uri = f"data:{provider.logo_content_type};base64,{encoded}"

    currency = invoice.currency
    units = {line.dimension: line.unit for line in invoice.lines}
    names = _dimension_names(
        session, provider_id, set(units) | {i.dimension for i in invoice.instance_lines}
    )
    status = InvoiceStatus(invoice.status)
    start = invoice.period_start.astimezone(UTC)
    has_tax = invoice.tax_name is not None or invoice.tax_percentage is not None
    tax_label = None
    if has_tax:
        tax_label = invoice.tax_name or "Tax"
        if invoice.tax_percentage is not None:
            tax_label = f"{tax_label} ({percentage(invoice.tax_percentage)})"
    watermark = None
    if status is InvoiceStatus.void:
        watermark = "VOID"
    elif invoice.number is None:
        watermark = "DRAFT"

    return InvoiceDocument(
        invoice_id=invoice.id,
        number=invoice.number,
        title="Invoice",
        status=_STATUS_LABELS.get(status, status.value),
        watermark=watermark,
        provider=Party(
            name=provider.legal_name or provider.name,
            address_lines=_lines_of(provider.address),
            tax_id=provider.tax_id,
            email=provider.support_email,
        ),
        logo_uri=logo_uri,
        customer=Party(
            name=customer.name,
            address_lines=_lines_of(customer.address),
            email=customer.email,
            external_billing_id=customer.external_billing_id,
        ),
        currency=currency,
        period_label=format_date(start.date(), "MMMM yyyy", locale=LOCALE),
        period_from=_utc(invoice.period_start),
        period_to=_utc(invoice.period_end),
        issued_on=_date(invoice.issued_at),
        due_on=_date(invoice.due_at),
        lines=[
            LineRow(
                plan=line.plan_name,
                dimension=names.get(line.dimension, line.dimension),
                unit=_unit_hours(line.unit),
                per=f"{line.unit}-hour" if line.unit else "hour",
                adjustment=(
                    f"Adjustment for {line.usage_period}" if line.kind == "adjustment" else None
                ),
                quantity=quantity(line.quantity),
                unit_price=money(line.unit_price, currency),
                amount=money(line.amount, currency),
            )
            for line in invoice.lines
        ],
        subtotal=money(invoice.subtotal, currency),
        tax_label=tax_label,
        tax_amount=money(invoice.tax_amount, currency) if has_tax else None,
        total=money(invoice.total, currency),
        instances=[
            InstanceRow(
                instance_id=item.instance_id,
                external_billing_id=item.external_billing_id or "—",
                location=f"{item.cloud} / {item.region}",
                dimension=names.get(item.dimension, item.dimension),
                quantity=f"{quantity(item.quantity)} {_unit_hours(units.get(item.dimension, ''))}",
                amount=money(item.amount, currency),
            )
            for item in invoice.instance_lines
        ],
    )


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("meterplane.invoicing", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(document: InvoiceDocument) -> str:
    return _environment().get_template("invoice.html").render(doc=document)


def render_document(document: InvoiceDocument) -> bytes:
    """The PDF's bytes; only ``data:`` URLs may be loaded while rendering."""
    html = HTML(string=render_html(document), url_fetcher=URLFetcher(allowed_protocols={"data"}))
    pdf: bytes = html.write_pdf()
    return pdf


def render_invoice_pdf(session: Session, provider_id: str, invoice_id: str) -> bytes:
    """The invoice as a PDF (NotFound for another provider's invoice)."""
    return render_document(load_document(session, provider_id, invoice_id))
