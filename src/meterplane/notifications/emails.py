"""Emails rendered at send time from the outbox row: Jinja2 templates, one folder per message
(``subject.txt``, ``body.txt``, ``body.html``), dates and money in the recipient's locale."""

import hashlib
from datetime import date, datetime
from decimal import Decimal
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy.orm import Session

from meterplane.customers.models import Customer
from meterplane.invoicing.models import Invoice
from meterplane.notifications.models import OutboxMessage
from meterplane.notifications.service import invoice_id_of
from meterplane.settings import Settings
from meterplane.tenancy.models import Provider

TEMPLATES = {
    "invoice.issued": "invoice_issued",
    "invoice.resent": "invoice_issued",
    "invoice.paid": "invoice_paid",
    "invoice.payment_failed": "invoice_payment_failed",
    "invoice.uncollectible": "invoice_uncollectible",
    "invoice.past_due": "invoice_past_due",
    "drafts.ready_for_review": "drafts_ready_for_review",
    "drafts.auto_approve_soon": "drafts_auto_approve_soon",
    "portal.magic_link": "portal_magic_link",
}


@lru_cache
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("meterplane.notifications", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject (one line), plain text and HTML of one message."""
    text_env, html_env = _environment(False), _environment(True)
    subject = " ".join(text_env.get_template(f"{template}/subject.txt").render(context).split())
    text = text_env.get_template(f"{template}/body.txt").render(context).strip() + "\n"
    html = html_env.get_template(f"{template}/body.html").render(context)
    return subject, text, html


def message_id(dedup_key: str, from_address: str) -> str:
    """Stable per message: a resend after a crash carries the same Message-ID."""
    domain = from_address.rpartition("@")[2] or "meterplane.localhost"
    return f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:40]}@{domain}>"


class Formats:
    def __init__(self, locale: str) -> None:
        self.locale = locale

    def money(self, amount: Decimal | str | None, currency: str) -> str:
        return format_currency(Decimal(amount or 0), currency, locale=self.locale)

    def day(self, moment: datetime | date | str | None) -> str:
        if moment is None:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return format_date(moment, format="long", locale=self.locale)

    def period(self, period: str) -> str:
        year, month = period.split("-")
        return format_date(date(int(year), int(month), 1), "LLLL yyyy", locale=self.locale)


def build_context(
    session: Session, row: OutboxMessage, provider: Provider, settings: Settings
) -> tuple[dict[str, Any], Invoice | None]:
    data: dict[str, Any] = row.payload.get("data", {})
    fmt = Formats(str(row.payload.get("locale") or "en_US"))
    base = settings.portal_base_url.rstrip("/")
    context: dict[str, Any] = {
        "provider_name": provider.name,
        "support_email": provider.support_email,
        "data": data,
    }
    invoice: Invoice | None = None
    if row.event.startswith("invoice."):
        invoice = session.get_one(Invoice, invoice_id_of(row.subject_id, data))
        customer = session.get_one(Customer, invoice.customer_id)
        context |= {
            "customer_name": customer.name,
            "number": invoice.number or invoice.id,
            "period": fmt.period(invoice.period),
            "amount": fmt.money(invoice.total, invoice.currency),
            "issued_date": fmt.day(invoice.issued_at),
            "due_date": fmt.day(invoice.due_at),
            "paid_date": fmt.day(invoice.paid_at or data.get("paid_at")),
            "portal_url": f"{base}/portal/invoices/{invoice.id}",
            "update_card_url": f"{base}/portal/payment-method",
            "reason": data.get("reason") or "the payment was declined",
            "next_retry_date": fmt.day(data.get("next_retry_at")),
        }
    else:
        period = str(data.get("period", ""))
        totals: dict[str, Any] = data.get("totals") or (
            {data["currency"]: data.get("total", "0")} if data.get("currency") else {}
        )
        context |= {
            "period": fmt.period(period) if period else "",
            "count": int(data.get("count", 0)),
            "totals": [fmt.money(amount, currency) for currency, amount in sorted(totals.items())],
            "auto_approve_date": fmt.day(data.get("auto_approve_at")),
            "manage_url": f"{base}/console/invoices?status=pending_approval&period={period}",
        }
    return context, invoice


def build_email(
    session: Session, row: OutboxMessage, *, settings: Settings, now: datetime
) -> EmailMessage:
    """The complete message for one outbox row (the invoice PDF attached when issued)."""
    provider = session.get_one(Provider, row.provider_id)
    context, invoice = build_context(session, row, provider, settings)
    subject, text, html = render(TEMPLATES[row.event], context)
    # RFC 5322 allows 998 characters a line; Python's 78-column folding would start a long
    # Subject on a continuation line, which some clients show with a leading space.
    message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
    message["From"] = Address(display_name=provider.name, addr_spec=settings.smtp_from_address)
    message["To"] = row.recipient
    if provider.support_email:
        message["Reply-To"] = provider.support_email
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(row.dedup_key, settings.smtp_from_address)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if row.event in ("invoice.issued", "invoice.resent") and invoice is not None:
        # Rendered now, not at notify time: the outbox row stays small.
        from meterplane.invoicing.pdf import render_invoice_pdf

        pdf = render_invoice_pdf(session, row.provider_id, invoice.id)
        message.add_attachment(
            pdf,
            maintype="application",
            subtype="pdf",
            filename=f"{invoice.number or invoice.id}.pdf",
        )
    return message
