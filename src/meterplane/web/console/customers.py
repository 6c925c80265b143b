"""Customers, their instances with usage per instance (a chart), and rejected samples."""

from datetime import timedelta
from typing import Any

from fastapi import Request
from starlette.responses import Response

from meterplane.catalog.models import Plan
from meterplane.catalog.service import list_plans
from meterplane.customers import service as customers
from meterplane.invoicing.upcoming import upcoming_invoice
from meterplane.kit.time import day_floor, hour_floor
from meterplane.metering.ingest import list_rejections
from meterplane.metering.queries import usage_report
from meterplane.metering.schemas import Granularity, UsageReport
from meterplane.web.console.base import CurrentUser, console_router, db, now
from meterplane.web.routing import render

router = console_router()

RANGES: dict[str, tuple[Granularity, timedelta]] = {
    "24h": ("hour", timedelta(hours=24)),
    "7d": ("hour", timedelta(days=7)),
    "30d": ("day", timedelta(days=30)),
    "90d": ("day", timedelta(days=90)),
}
PALETTE = ["#2548c9", "#1f7a3d", "#b45309", "#7c3aed", "#be123c", "#0e7490"]


@router.get("/customers")
def customer_list(request: Request, me: CurrentUser) -> Response:
    with db(request) as s:
        rows = customers.list_customers(s, me.provider_id)
        instances = customers.list_instances(s, me.provider_id)
        counts: dict[str, int] = {}
        for instance in instances:
            if instance.terminated_at is None:
                counts[instance.customer_id] = counts.get(instance.customer_id, 0) + 1
        return render(
            request,
            "console/customers.html",
            {"me": me, "active": "customers", "customers": rows, "counts": counts},
        )


@router.get("/customers/{customer_id}")
def customer_detail(request: Request, me: CurrentUser, customer_id: str) -> Response:
    with db(request) as s:
        customer = customers.get_customer(s, me.provider_id, customer_id)
        instances = customers.list_instances(s, me.provider_id, customer_id=customer_id)
        subscriptions = [
            sub
            for sub in customers.list_subscriptions(s, me.provider_id)
            if sub.customer_id == customer_id
        ]
        plans = {plan.id: plan.name for plan in list_plans(s, me.provider_id)}
        estimate = upcoming_invoice(s, me.provider_id, customer_id, now=now(request))
        return render(
            request,
            "console/customer.html",
            {
                "me": me,
                "active": "customers",
                "customer": customer,
                "instances": instances,
                "subscriptions": subscriptions,
                "plans": plans,
                "estimate": estimate,
            },
        )


def chart_config(report: UsageReport, granularity: str) -> dict[str, Any]:
    """Chart.js line chart of every dimension with usage, in unit-hours per bucket."""
    keys = [key for key, total in report.totals.items() if total]
    labels = [
        bucket.start.strftime("%m-%d %H:00" if granularity == "hour" else "%Y-%m-%d")
        for bucket in report.data
    ]
    datasets = [
        {
            "label": f"{key} ({report.units.get(key, '')})",
            # Exact decimal strings: Chart.js reads numeric strings as numbers.
            "data": [format(bucket.quantities.get(key, 0), "f") for bucket in report.data],
            "borderColor": PALETTE[index % len(PALETTE)],
            "backgroundColor": PALETTE[index % len(PALETTE)],
            "pointRadius": 0,
            "borderWidth": 2,
            "tension": 0.2,
        }
        for index, key in enumerate(keys)
    ]
    return {
        "type": "line",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "interaction": {"mode": "index", "intersect": False},
            "scales": {
                "y": {"beginAtZero": True, "title": {"display": True, "text": "unit-hours"}}
            },
            "plugins": {"legend": {"position": "bottom"}},
        },
    }


@router.get("/instances/{instance_id:path}")
def instance_detail(
    request: Request, me: CurrentUser, instance_id: str, range: str = "7d"
) -> Response:
    granularity, span = RANGES.get(range, RANGES["7d"])
    moment = now(request)
    end = hour_floor(moment) + timedelta(hours=1)
    start = hour_floor(end - span) if granularity == "hour" else day_floor(end - span)
    with db(request) as s:
        instance = customers.get_instance(s, me.provider_id, instance_id)
        customer = customers.get_customer(s, me.provider_id, instance.customer_id)
        plan = s.get(Plan, instance.plan_id)
        report = usage_report(
            s,
            me.provider_id,
            customer_id=None,
            instance_id=instance.id,
            start=start,
            end=end,
            granularity=granularity,
            dimension=None,
        )
        rejections = list_rejections(s, me.provider_id, limit=20, instance_id=instance.id)
        return render(
            request,
            "console/instance.html",
            {
                "me": me,
                "active": "customers",
                "instance": instance,
                "customer": customer,
                "plan": plan,
                "report": report,
                "range": range if range in RANGES else "7d",
                "ranges": list(RANGES),
                "chart": chart_config(report, granularity),
                "has_usage": any(report.totals.values()),
                "rejections": rejections,
            },
        )


@router.get("/rejections")
def rejections(
    request: Request, me: CurrentUser, code: str = "", before: int | None = None
) -> Response:
    with db(request) as s:
        rows = list_rejections(
            s, me.provider_id, limit=51, before_id=before, code=code.strip() or None
        )
        return render(
            request,
            "console/rejections.html",
            {
                "me": me,
                "active": "customers",
                "rejections": rows[:50],
                "next_before": rows[49].id if len(rows) > 50 else None,
                "code": code,
            },
        )
