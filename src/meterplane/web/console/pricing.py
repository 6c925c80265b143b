"""Pricing: services, plans, price versions, quotas, and the auto-approve setting."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from meterplane.catalog import service as catalog
from meterplane.catalog.models import PriceScope
from meterplane.invoicing.settings import update_settings
from meterplane.kit.errors import InvalidInput
from meterplane.tenancy.service import get_provider
from meterplane.web.console.base import PREFIX, CurrentUser, console_router, db, now
from meterplane.web.routing import form_of, redirect_to, render
from meterplane.web.sessions import flash

router = console_router()


def _optional_int(value: str, field: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"{field} must be a whole number (or empty)", code="invalid_number")
    return int(value)


def _hour(value: str) -> datetime:
    """An ``<input type=datetime-local>`` value, read as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("give the start as a date and hour (UTC)", code="invalid_time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@router.get("/pricing")
def pricing(request: Request, me: CurrentUser) -> Response:
    with db(request) as s:
        services = catalog.list_services(s, me.provider_id)
        plans = catalog.list_plans(s, me.provider_id)
        provider = get_provider(s, me.provider_id)
        dimensions = catalog.list_dimensions(s, me.provider_id)
        moment = now(request)
        return render(
            request,
            "console/pricing.html",
            {
                "me": me,
                "active": "pricing",
                "services": services,
                "plans_by_service": {
                    svc.id: [p for p in plans if p.service_id == svc.id] for svc in services
                },
                "current": {p.id: catalog.current_prices(p, at=moment) for p in plans},
                "versions": {p.id: catalog.price_versions(p) for p in plans},
                "dimensions": dimensions,
                "auto_approve_after_days": provider.auto_approve_after_days,
                "next_hour": moment.replace(minute=0, second=0, microsecond=0),
            },
        )


@router.post("/pricing/services")
def create_service(
    request: Request, me: CurrentUser, name: Annotated[str, Form(max_length=200)]
) -> Response:
    me.require("pricing")
    with db(request) as s:
        catalog.create_service(s, me.provider_id, name, now=now(request), actor=me.actor)
    flash(request, f"Service {name.strip()} created.")
    return redirect_to(request, f"{PREFIX}/pricing")


@router.post("/pricing/plans")
def create_plan(request: Request, me: CurrentUser) -> Response:
    me.require("pricing")
    form = form_of(request)
    prices = {
        str(key)[len("price_") :]: str(value).strip()
        for key, value in form.items()
        if str(key).startswith("price_") and str(value).strip()
    }
    name = str(form.get("name", "")).strip()
    with db(request) as s:
        catalog.create_plan(
            s,
            me.provider_id,
            service_id=str(form.get("service_id", "")),
            name=name,
            currency=str(form.get("currency", "USD")).strip().upper(),
            prices=prices,
            max_instances_per_customer=_optional_int(
                str(form.get("max_instances_per_customer", "")), "Max instances"
            ),
            require_payment_method=form.get("require_payment_method") == "on",
            now=now(request),
            actor=me.actor,
        )
    flash(request, f"Plan {name} created.")
    return redirect_to(request, f"{PREFIX}/pricing")


@router.post("/pricing/plans/{plan_id}/quotas")
def update_quotas(
    request: Request,
    me: CurrentUser,
    plan_id: str,
    max_instances_per_customer: Annotated[str, Form()] = "",
    require_payment_method: Annotated[str | None, Form()] = None,
) -> Response:
    me.require("pricing")
    with db(request) as s:
        plan = catalog.update_plan(
            s,
            me.provider_id,
            plan_id,
            actor=me.actor,
            now=now(request),
            max_instances_per_customer=_optional_int(max_instances_per_customer, "Max instances"),
            require_payment_method=require_payment_method == "on",
        )
        name = plan.name
    flash(request, f"Quotas of {name} saved.")
    return redirect_to(request, f"{PREFIX}/pricing#plan-{plan_id}")


@router.post("/pricing/plans/{plan_id}/prices")
def add_prices(request: Request, me: CurrentUser, plan_id: str) -> Response:
    me.require("pricing")
    form = form_of(request)
    prices = {
        str(key)[len("price_") :]: str(value).strip()
        for key, value in form.items()
        if str(key).startswith("price_") and str(value).strip()
    }
    scope = PriceScope(str(form.get("applies_to", PriceScope.all_subscriptions.value)))
    with db(request) as s:
        catalog.add_price_version(
            s,
            me.provider_id,
            plan_id,
            prices=prices,
            effective_from=_hour(str(form.get("effective_from", ""))),
            applies_to=scope,
            actor=me.actor,
            now=now(request),
        )
    flash(request, "New price version saved.")
    return redirect_to(request, f"{PREFIX}/pricing#plan-{plan_id}")


@router.post("/pricing/auto-approve")
def auto_approve(
    request: Request,
    me: CurrentUser,
    mode: Annotated[str, Form()] = "manual",
    days: Annotated[str, Form()] = "",
) -> Response:
    me.require("settings")
    value = None if mode == "manual" else _optional_int(days, "Days")
    if mode != "manual" and value is None:
        raise InvalidInput("give the number of days before drafts are approved", code="no_days")
    with db(request) as s:
        update_settings(
            s, me.provider_id, {"auto_approve_after_days": value}, actor=me.actor, now=now(request)
        )
    flash(
        request,
        "Drafts now wait for manual approval."
        if value is None
        else f"Drafts are approved automatically {value} day(s) after they are frozen.",
    )
    return redirect_to(request, f"{PREFIX}/pricing#auto-approve")
