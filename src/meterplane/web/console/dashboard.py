"""The dashboard: month-to-date usage and revenue, drafts to review, failed payments."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from fastapi import Request
from starlette.responses import Response

from meterplane.customers.service import list_customers
from meterplane.invoicing.rating import rate_customers
from meterplane.invoicing.service import list_invoices
from meterplane.invoicing.states import InvoiceStatus
from meterplane.kit.time import add_months, hour_floor, month_floor
from meterplane.payments.connect import get_account
from meterplane.web.console.base import CurrentUser, console_router, db, now
from meterplane.web.routing import render

router = console_router()


@router.get("")
def dashboard(request: Request, me: CurrentUser) -> Response:
    moment = now(request)
    start = month_floor(moment)
    through = min(hour_floor(moment) + timedelta(hours=1), add_months(start, 1))
    with db(request) as s:
        customers = list_customers(s, me.provider_id)
        ratings = rate_customers(
            s, me.provider_id, [c.id for c in customers], start=start, end=through
        )
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        usage: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        top: list[tuple[str, str, Decimal]] = []
        names = {c.id: c.name for c in customers}
        for rating in ratings.values():
            if rating.currency:
                revenue[rating.currency] += rating.subtotal
                if rating.subtotal:
                    top.append((names[rating.customer_id], rating.currency, rating.subtotal))
            for line in rating.lines:
                usage[(line.dimension, line.unit)] += line.quantity
        review = list_invoices(s, me.provider_id, status=InvoiceStatus.pending_approval)
        drafts = list_invoices(s, me.provider_id, status=InvoiceStatus.draft)
        failed = [
            *list_invoices(s, me.provider_id, status=InvoiceStatus.payment_failed),
            *list_invoices(s, me.provider_id, status=InvoiceStatus.past_due),
        ]
        account = get_account(s, me.provider_id)
        return render(
            request,
            "console/dashboard.html",
            {
                "me": me,
                "active": "dashboard",
                "period_start": start,
                "through": through,
                "revenue": sorted(revenue.items()),
                "usage": sorted(usage.items()),
                "top": sorted(top, key=lambda item: item[2], reverse=True)[:5],
                "review": review,
                "drafts": drafts,
                "failed": failed,
                "names": names,
                "stripe_connected": account is not None and account.disconnected_at is None,
            },
        )
