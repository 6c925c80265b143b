"""Pricing as code: bring a provider's catalogue in line with a service file.

``apply_service_file`` compares the file with what is stored, lists the changes, and makes
them through the catalogue service (so each one is audit-logged), all or nothing: any error
rolls every change back, and a dry run rolls back even a clean run. Applying the same file
twice changes nothing the second time.

Price rules, for a plan that already exists:

* ``price_versions`` entries are matched with the stored versions by (dimension,
  effective_from); missing ones are added, stored ones must carry the same price and scope.
* ``prices`` are the plan's base prices. For each dimension, the file's price at the next
  whole hour (the latest file version in force then, else the base price) is compared with
  the stored price in force then; a difference becomes a new version from the next whole
  hour, for all subscriptions.
* Nothing is removed: a stored price the file no longer gives is an error (price it "0").
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from meterplane.catalog import service as catalog
from meterplane.catalog.models import Plan, PriceScope
from meterplane.catalog.servicefile import (
    FileError,
    PlanDecl,
    QuotaDecl,
    ServiceFile,
    ServiceFileInvalid,
    VersionDecl,
    parse_service_file,
)
from meterplane.kit.decimals import strip_zeros
from meterplane.kit.errors import MeterplaneError
from meterplane.kit.time import hour_floor
from meterplane.tenancy.service import get_provider

ACTOR = "cli:apply"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def money_text(price: Decimal | None) -> str:
    return "none" if price is None else format(strip_zeros(price), "f")


def quota_text(value: Any) -> str:
    if value is None:
        return "unlimited"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class _Run:
    """What the changes share while they are made: ids of objects created along the way."""

    provider_id: str
    actor: str
    now: datetime
    service_id: str | None
    plan_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One change: the YAML path that asks for it, what it does, and human-readable lines."""

    action: str
    path: str
    lines: tuple[str, ...]
    detail: dict[str, Any]

    def execute(self, session: Session, run: _Run) -> None:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "path": self.path, "lines": list(self.lines), **self.detail}


@dataclass(frozen=True)
class _CreateService(Change):
    name: str = ""
    integrations: tuple[str, ...] = ()

    def execute(self, session: Session, run: _Run) -> None:
        created = catalog.create_service(
            session,
            run.provider_id,
            self.name,
            now=run.now,
            actor=run.actor,
            integrations=self.integrations,
        )
        run.service_id = created.id


@dataclass(frozen=True)
class _SetIntegrations(Change):
    integrations: tuple[str, ...] = ()

    def execute(self, session: Session, run: _Run) -> None:
        assert run.service_id is not None
        catalog.set_service_integrations(
            session,
            run.provider_id,
            run.service_id,
            self.integrations,
            actor=run.actor,
            now=run.now,
        )


@dataclass(frozen=True)
class _CreateDimension(Change):
    key: str = ""
    unit: str = ""
    display_name: str | None = None

    def execute(self, session: Session, run: _Run) -> None:
        catalog.create_dimension(
            session,
            run.provider_id,
            key=self.key,
            unit=self.unit,
            display_name=self.display_name,
            actor=run.actor,
            now=run.now,
        )


@dataclass(frozen=True)
class _CreatePlan(Change):
    plan: PlanDecl | None = None

    def execute(self, session: Session, run: _Run) -> None:
        assert self.plan is not None
        if run.service_id is None:
            return  # the service could not be created; that error is reported already
        quota = self.plan.quota
        created = catalog.create_plan(
            session,
            run.provider_id,
            service_id=run.service_id,
            name=self.plan.name,
            currency=self.plan.currency,
            prices={key: str(value) for key, value in self.plan.prices.items()},
            max_instances_per_customer=quota.max_instances_per_customer if quota else None,
            require_payment_method=quota.require_payment_method if quota else False,
            actor=run.actor,
            now=run.now,
        )
        run.plan_ids[self.plan.name] = created.id


@dataclass(frozen=True)
class _UpdateQuotas(Change):
    plan_name: str = ""
    max_instances_per_customer: int | None = None
    require_payment_method: bool | None = None
    set_max_instances: bool = False

    def execute(self, session: Session, run: _Run) -> None:
        plan_id = run.plan_ids[self.plan_name]
        if self.set_max_instances:
            catalog.update_plan(
                session,
                run.provider_id,
                plan_id,
                actor=run.actor,
                now=run.now,
                max_instances_per_customer=self.max_instances_per_customer,
                require_payment_method=self.require_payment_method,
            )
        else:
            catalog.update_plan(
                session,
                run.provider_id,
                plan_id,
                actor=run.actor,
                now=run.now,
                require_payment_method=self.require_payment_method,
            )


@dataclass(frozen=True)
class _AddPrices(Change):
    plan_name: str = ""
    effective_from: datetime | None = None
    applies_to: PriceScope = PriceScope.all_subscriptions
    prices: tuple[tuple[str, Decimal], ...] = ()

    def execute(self, session: Session, run: _Run) -> None:
        assert self.effective_from is not None
        plan_id = run.plan_ids.get(self.plan_name)
        if plan_id is None:
            return  # the plan could not be created; that error is reported already
        catalog.add_price_version(
            session,
            run.provider_id,
            plan_id,
            prices={key: str(value) for key, value in self.prices},
            effective_from=self.effective_from,
            applies_to=self.applies_to,
            actor=run.actor,
            now=run.now,
        )


@dataclass
class ApplyResult:
    service_name: str
    service_id: str | None
    changes: list[Change]
    dry_run: bool

    @property
    def applied(self) -> bool:
        return bool(self.changes) and not self.dry_run

    def lines(self) -> list[str]:
        return [line for change in self.changes for line in change.lines]

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service_name,
            "service_id": self.service_id,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "changes": [change.as_json() for change in self.changes],
        }


# --- comparing the file with what is stored ------------------------------------------------

_Timeline = dict[str, dict[datetime, Decimal]]


def _price_at(timeline: dict[datetime, Decimal], moment: datetime) -> Decimal | None:
    """The price of the latest version starting at or before ``moment``."""
    starts = [start for start in timeline if start <= moment]
    return timeline[max(starts)] if starts else None


def _price_before(timeline: dict[datetime, Decimal], moment: datetime) -> Decimal | None:
    starts = [start for start in timeline if start < moment]
    return timeline[max(starts)] if starts else None


def _file_timeline(versions: Iterable[VersionDecl]) -> _Timeline:
    timeline: _Timeline = {}
    for version in versions:
        for key, price in version.prices.items():
            timeline.setdefault(key, {})[version.effective_from] = price
    return timeline


def _price_lines(
    plan_name: str,
    prices: dict[str, Decimal],
    before: dict[str, Decimal | None],
    start: datetime,
    scope: PriceScope,
) -> tuple[str, ...]:
    suffix = " (new subscriptions only)" if scope is PriceScope.new_subscriptions else ""
    lines = []
    for key, price in sorted(prices.items()):
        was = before.get(key)
        change = money_text(price) if was is None else f"{money_text(was)} → {money_text(price)}"
        lines.append(f"+ price {plan_name} {key} {change} from {stamp(start)}{suffix}")
    return tuple(lines)


def _add_prices(
    plan_name: str,
    path: str,
    prices: dict[str, Decimal],
    before: dict[str, Decimal | None],
    start: datetime,
    scope: PriceScope,
) -> _AddPrices:
    return _AddPrices(
        action="price_version.add",
        path=path,
        lines=_price_lines(plan_name, prices, before, start, scope),
        detail={
            "plan": plan_name,
            "effective_from": stamp(start),
            "applies_to": scope.value,
            "prices": {key: money_text(value) for key, value in sorted(prices.items())},
            "before": {key: None if v is None else money_text(v) for key, v in before.items()},
        },
        plan_name=plan_name,
        effective_from=start,
        applies_to=scope,
        prices=tuple(sorted(prices.items())),
    )


def _new_plan_changes(decl: PlanDecl) -> list[Change]:
    quota = decl.quota
    limit = quota.max_instances_per_customer if quota else None
    payment = quota.require_payment_method if quota else False
    lines = [f"+ plan {decl.name} ({decl.currency})"]
    if decl.prices:
        lines.append(
            "    prices: "
            + ", ".join(f"{k} {money_text(v)}" for k, v in sorted(decl.prices.items()))
        )
    lines.append(
        f"    max_instances_per_customer {quota_text(limit)}, "
        f"require_payment_method {quota_text(payment)}"
    )
    changes: list[Change] = [
        _CreatePlan(
            action="plan.create",
            path=decl.path,
            lines=tuple(lines),
            detail={
                "plan": decl.name,
                "currency": decl.currency,
                "prices": {k: money_text(v) for k, v in sorted(decl.prices.items())},
                "max_instances_per_customer": limit,
                "require_payment_method": payment,
            },
            plan=decl,
        )
    ]
    timeline: _Timeline = {key: {catalog.BEGINNING: price} for key, price in decl.prices.items()}
    for version in sorted(decl.versions, key=lambda v: v.effective_from):
        start = version.effective_from
        before = {k: _price_before(timeline.get(k, {}), start) for k in version.prices}
        changes.append(
            _add_prices(
                decl.name,
                version.path,
                version.prices,
                before,
                version.effective_from,
                version.applies_to,
            )
        )
        for key, price in version.prices.items():
            timeline.setdefault(key, {})[version.effective_from] = price
    return changes


def _quota_change(decl: PlanDecl, quota: QuotaDecl, plan: Plan) -> Change | None:
    lines = []
    detail: dict[str, Any] = {"plan": decl.name}
    set_limit = False
    limit = plan.max_instances_per_customer
    payment: bool | None = None
    if (
        "max_instances_per_customer" in quota.fields
        and quota.max_instances_per_customer != plan.max_instances_per_customer
    ):
        set_limit = True
        limit = quota.max_instances_per_customer
        lines.append(
            f"~ plan {decl.name}: max_instances_per_customer "
            f"{quota_text(plan.max_instances_per_customer)} → {quota_text(limit)}"
        )
        detail["max_instances_per_customer"] = {
            "before": plan.max_instances_per_customer,
            "after": limit,
        }
    if (
        "require_payment_method" in quota.fields
        and quota.require_payment_method != plan.require_payment_method
    ):
        payment = quota.require_payment_method
        lines.append(
            f"~ plan {decl.name}: require_payment_method "
            f"{quota_text(plan.require_payment_method)} → {quota_text(payment)}"
        )
        detail["require_payment_method"] = {"before": plan.require_payment_method, "after": payment}
    if not lines:
        return None
    field_path = "max_instances_per_customer" if set_limit else "require_payment_method"
    return _UpdateQuotas(
        action="plan.update",
        path=f"{quota.path}.{field_path}",
        lines=tuple(lines),
        detail=detail,
        plan_name=decl.name,
        max_instances_per_customer=limit,
        require_payment_method=payment,
        set_max_instances=set_limit,
    )


def _existing_plan_changes(
    decl: PlanDecl, plan: Plan, *, now: datetime, errors: list[FileError]
) -> list[Change]:
    changes: list[Change] = []
    if decl.currency != plan.currency:
        errors.append(
            FileError(
                f"{decl.path}.currency",
                f"plan {decl.name} bills in {plan.currency}; a plan's currency cannot change "
                "(create a new plan instead)",
                "currency_change",
            )
        )
    if decl.quota is not None:
        quota_change = _quota_change(decl, decl.quota, plan)
        if quota_change is not None:
            changes.append(quota_change)

    stored: _Timeline = {}
    scopes: dict[tuple[str, datetime], PriceScope] = {}
    for row in plan.prices:
        stored.setdefault(row.dimension_key, {})[row.effective_from] = row.unit_price
        scopes[(row.dimension_key, row.effective_from)] = row.applies_to

    # Explicit versions: add the missing ones, refuse ones that contradict what is stored.
    planned: _Timeline = {key: dict(held) for key, held in stored.items()}
    for version in sorted(decl.versions, key=lambda v: v.effective_from):
        missing: dict[str, Decimal] = {}
        for key, price in version.prices.items():
            held = stored.get(key, {}).get(version.effective_from)
            if held is None:
                missing[key] = price
            elif held != price or scopes[(key, version.effective_from)] != version.applies_to:
                errors.append(
                    FileError(
                        f"{version.path}.prices.{key}",
                        f"the stored version from {stamp(version.effective_from)} is "
                        f"{money_text(held)} for "
                        f"{scopes[(key, version.effective_from)].value}; a stored price version "
                        "cannot change (add a version at another hour)",
                        "price_version_differs",
                    )
                )
        if missing:
            was = {k: _price_before(planned.get(k, {}), version.effective_from) for k in missing}
            changes.append(
                _add_prices(
                    decl.name,
                    version.path,
                    missing,
                    was,
                    version.effective_from,
                    version.applies_to,
                )
            )
            for key, price in missing.items():
                planned.setdefault(key, {})[version.effective_from] = price

    # Base prices: what the file wants in force from the next hour, against what will be.
    next_hour = hour_floor(now) + timedelta(hours=1)
    from_file = _file_timeline(decl.versions)
    changed: dict[str, Decimal] = {}
    before: dict[str, Decimal | None] = {}
    for key in sorted(set(decl.prices) | set(planned)):
        wanted = _price_at(from_file.get(key, {}), next_hour)
        if wanted is None:
            wanted = decl.prices.get(key)
        in_force = _price_at(planned.get(key, {}), next_hour)
        if wanted is None:
            if in_force is not None:
                errors.append(
                    FileError(
                        f"{decl.path}.prices",
                        f"{key} is priced {money_text(in_force)} but the file gives no price; "
                        f'prices are never removed: give {key}: "0" to stop billing it',
                        "price_removed",
                    )
                )
            continue
        if in_force is None or wanted != in_force:
            changed[key] = wanted
            before[key] = in_force
    if changed:
        changes.append(
            _add_prices(
                decl.name,
                f"{decl.path}.prices",
                changed,
                before,
                next_hour,
                PriceScope.all_subscriptions,
            )
        )
    return changes


def plan_changes(
    session: Session, provider_id: str, spec: ServiceFile, *, now: datetime
) -> tuple[list[Change], list[FileError], str | None]:
    """The changes that bring the stored catalogue in line with ``spec``, and contradictions."""
    changes: list[Change] = []
    errors: list[FileError] = []
    stored_service = catalog.find_service_by_name(session, provider_id, spec.name)
    if stored_service is None:
        integrations = tuple(spec.integrations or ())
        changes.append(
            _CreateService(
                action="service.create",
                path="name",
                lines=(
                    f"+ service {spec.name} (integrations: "
                    f"{', '.join(integrations) if integrations else 'none'})",
                ),
                detail={"service": spec.name, "integrations": list(integrations)},
                name=spec.name,
                integrations=integrations,
            )
        )
    elif spec.integrations is not None and sorted(stored_service.integrations) != sorted(
        spec.integrations
    ):
        held_integrations = sorted(stored_service.integrations)
        changes.append(
            _SetIntegrations(
                action="service.integrations",
                path="x-meterplane-integrations",
                lines=(
                    f"~ service {spec.name}: integrations "
                    f"[{', '.join(held_integrations)}] → [{', '.join(spec.integrations)}]",
                ),
                detail={
                    "service": spec.name,
                    "before": held_integrations,
                    "after": list(spec.integrations),
                },
                integrations=tuple(spec.integrations),
            )
        )

    existing = {d.key: d for d in catalog.list_dimensions(session, provider_id)}
    for dimension in spec.dimensions:
        held = existing.get(dimension.key)
        if held is None:
            changes.append(
                _CreateDimension(
                    action="dimension.create",
                    path=dimension.path,
                    lines=(f"+ dimension {dimension.key} (unit: {dimension.unit})",),
                    detail={
                        "key": dimension.key,
                        "unit": dimension.unit,
                        "display_name": dimension.display_name or dimension.key,
                    },
                    key=dimension.key,
                    unit=dimension.unit,
                    display_name=dimension.display_name,
                )
            )
        elif held.unit != dimension.unit:
            errors.append(
                FileError(
                    f"{dimension.path}.unit",
                    f"dimension {dimension.key} exists with unit '{held.unit}'; "
                    "a dimension's unit cannot change",
                    "dimension_unit_differs",
                )
            )

    for decl in spec.plans:
        plan = (
            catalog.find_plan(session, provider_id, stored_service.id, decl.name)
            if stored_service is not None
            else None
        )
        if plan is None:
            changes.extend(_new_plan_changes(decl))
        else:
            changes.extend(_existing_plan_changes(decl, plan, now=now, errors=errors))
    return changes, errors, stored_service.id if stored_service else None


def apply_service_file(
    session: Session,
    provider_id: str,
    text: str,
    *,
    now: datetime,
    dry_run: bool = False,
    actor: str = ACTOR,
) -> ApplyResult:
    """Make the catalogue match a service file: all changes, or none and ServiceFileInvalid."""
    get_provider(session, provider_id)
    known = catalog.known_dimension_keys(session, provider_id)
    spec = parse_service_file(text, known_dimensions=known)
    changes, errors, service_id = plan_changes(session, provider_id, spec, now=now)
    run = _Run(provider_id=provider_id, actor=actor, now=now, service_id=service_id)
    if service_id is not None:
        run.plan_ids.update(
            {p.name: p.id for p in catalog.list_plans(session, provider_id, service_id=service_id)}
        )
    # Every change runs, even after one fails, so the report lists all that fail; the
    # outer savepoint then undoes everything unless the whole run is clean and real.
    outer = session.begin_nested()
    try:
        for change in changes:
            try:
                with session.begin_nested():
                    change.execute(session, run)
            except MeterplaneError as exc:
                errors.append(FileError(change.path, exc.message, exc.code))
    except BaseException:
        outer.rollback()
        raise
    if errors or dry_run:
        outer.rollback()
        session.expire_all()
    else:
        outer.commit()
    if errors:
        raise ServiceFileInvalid(errors)
    return ApplyResult(
        service_name=spec.name,
        service_id=None if dry_run and service_id is None else run.service_id,
        changes=changes,
        dry_run=dry_run,
    )
