"""Pricing as code: reading a compose-style service file's ``x-meterplane-*`` extensions.

Only the extensions and the top-level ``name`` mean something to Meterplane; the rest of the
file (``services:``, ``volumes:``, ``image:`` ...) belongs to the deployment and is ignored.
Every mistake found is reported with its YAML path, all at once where the file allows it.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)

from meterplane.catalog.models import PriceScope
from meterplane.catalog.pricing_input import parse_unit_price, require_hour
from meterplane.catalog.service import KNOWN_INTEGRATIONS
from meterplane.kit.errors import MeterplaneError
from meterplane.kit.money import validate_currency

SERVICE = "x-meterplane-service"
PLANS = "x-meterplane-plans"
QUOTAS = "x-meterplane-quotas"
INTEGRATIONS = "x-meterplane-integrations"
DIMENSIONS = "x-meterplane-dimensions"
EXTENSIONS = (SERVICE, PLANS, QUOTAS, INTEGRATIONS, DIMENSIONS)
DIMENSION_KEY = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


@dataclass(frozen=True)
class FileError:
    """One mistake in the file: where (a YAML path), what, and a machine-readable code."""

    path: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.code})"


class ServiceFileInvalid(MeterplaneError):
    """The file cannot be applied; ``errors`` lists every mistake found."""

    status_code = 422
    code = "invalid_service_file"

    def __init__(self, errors: list[FileError]) -> None:
        super().__init__(
            f"{len(errors)} error(s) in the service file: " + "; ".join(str(e) for e in errors)
        )
        self.errors = errors


# --- the shapes the extensions must have ---------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=200)]


M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServiceSpec(_Strict):
    name: Text


class PriceVersionSpec(_Strict):
    effective_from: AwareDatetime
    applies_to: PriceScope = PriceScope.all_subscriptions
    prices: dict[str, Any] = Field(min_length=1)


class PlanSpec(_Strict):
    currency: Annotated[str, Field(min_length=1, max_length=8)]
    prices: dict[str, Any] = Field(default_factory=dict)
    price_versions: list[PriceVersionSpec] = Field(default_factory=list)


class QuotaSpec(_Strict):
    max_instances_per_customer: Annotated[StrictInt, Field(ge=0)] | None = None
    require_payment_method: StrictBool = False


class DimensionSpec(_Strict):
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    display_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


# --- what a valid file declares --------------------------------------------------------------


@dataclass(frozen=True)
class VersionDecl:
    effective_from: datetime
    applies_to: PriceScope
    prices: dict[str, Decimal]
    path: str


@dataclass(frozen=True)
class QuotaDecl:
    """Only the keys the file gives are managed; ``fields`` names them."""

    max_instances_per_customer: int | None
    require_payment_method: bool
    fields: frozenset[str]
    path: str


@dataclass(frozen=True)
class PlanDecl:
    name: str
    currency: str
    prices: dict[str, Decimal]
    versions: list[VersionDecl]
    quota: QuotaDecl | None
    path: str


@dataclass(frozen=True)
class DimensionDecl:
    key: str
    unit: str
    display_name: str | None
    path: str


@dataclass(frozen=True)
class ServiceFile:
    name: str
    plans: list[PlanDecl] = field(default_factory=list)
    # None: the file does not mention integrations, so they are left as they are.
    integrations: list[str] | None = None
    dimensions: list[DimensionDecl] = field(default_factory=list)


# --- YAML --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """``safe_load`` that keeps ``0.04`` exact (a Decimal, never a float) and refuses duplicates."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return loader.construct_yaml_float(node)  # .inf, .nan: refused later as prices


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | bool | Decimal) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        if isinstance(key, str | int | bool | Decimal):
            seen.add(key)
    return dict(loader.construct_pairs(node))


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml(text: str) -> dict[str, Any]:
    """The file as a mapping, or ServiceFileInvalid for a syntax error or another shape."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = exc.problem or exc.context or "malformed YAML"
        raise ServiceFileInvalid([FileError(where, problem, "yaml_syntax")]) from exc
    except yaml.YAMLError as exc:
        raise ServiceFileInvalid([FileError("(file)", str(exc), "yaml_syntax")]) from exc
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ServiceFileInvalid(
            [FileError("(root)", f"the file must be a mapping, not {kind}", "not_a_mapping")]
        )
    return {str(k): v for k, v in data.items()}


# --- validation --------------------------------------------------------------------------------


def yaml_path(*parts: Any) -> str:
    """``(PLANS, "Pro", "price_versions", 0)`` → ``x-meterplane-plans.Pro.price_versions[0]``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


_PYDANTIC_MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
}


def _pydantic_errors(exc: ValidationError, *prefix: Any) -> list[FileError]:
    found = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if part != "[key]"]
        message = _PYDANTIC_MESSAGES.get(error["type"], error["msg"])
        if error["type"] not in _PYDANTIC_MESSAGES and "input" in error:
            shown = error["input"]
            if isinstance(shown, str | int | Decimal | datetime):
                message += f": {shown}"
        found.append(FileError(yaml_path(*prefix, *loc), message, error["type"]))
    return found


def _validate(model: type[M], value: Any, errors: list[FileError], *path: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc, *path))
        return None


def _mapping(data: Mapping[str, Any], key: str, errors: list[FileError]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FileError(key, "must be a mapping", "not_a_mapping"))
        return {}
    return {str(k): v for k, v in value.items()}


def _prices(
    raw: dict[str, Any], known: set[str] | None, errors: list[FileError], *path: Any
) -> dict[str, Decimal]:
    parsed: dict[str, Decimal] = {}
    for dimension, value in sorted(raw.items(), key=lambda item: str(item[0])):
        if known is not None and dimension not in known:
            errors.append(
                FileError(
                    yaml_path(*path, dimension),
                    f"unknown dimension; known: {', '.join(sorted(known))} "
                    f"(declare custom ones in {DIMENSIONS})",
                    "unknown_dimension",
                )
            )
            continue
        try:
            parsed[dimension] = parse_unit_price(dimension, value)
        except MeterplaneError as exc:
            # The path names the dimension; the message need not repeat it.
            message = exc.message.replace(f"price of {dimension} ", "price ")
            errors.append(FileError(yaml_path(*path, dimension), message, exc.code))
    return parsed


def _plan(name: str, spec: PlanSpec, errors: list[FileError], known: set[str] | None) -> PlanDecl:
    path = (PLANS, name)
    try:
        currency = validate_currency(spec.currency)
    except MeterplaneError as exc:
        errors.append(FileError(yaml_path(*path, "currency"), exc.message, exc.code))
        currency = spec.currency
    prices = _prices(spec.prices, known, errors, *path, "prices")
    versions: list[VersionDecl] = []
    seen: dict[tuple[str, datetime], int] = {}
    for index, version in enumerate(spec.price_versions):
        vpath = (*path, "price_versions", index)
        try:
            start = require_hour(version.effective_from, "effective_from")
        except MeterplaneError as exc:
            errors.append(FileError(yaml_path(*vpath, "effective_from"), exc.message, exc.code))
            continue
        for dimension in version.prices:
            if (dimension, start) in seen:
                errors.append(
                    FileError(
                        yaml_path(*vpath, "prices", dimension),
                        f"price_versions[{seen[(dimension, start)]}] already prices {dimension} "
                        f"from {start.isoformat()}",
                        "duplicate_price_version",
                    )
                )
            seen[(dimension, start)] = index
        versions.append(
            VersionDecl(
                effective_from=start,
                applies_to=version.applies_to,
                prices=_prices(version.prices, known, errors, *vpath, "prices"),
                path=yaml_path(*vpath),
            )
        )
    return PlanDecl(
        name=name,
        currency=currency,
        prices=prices,
        versions=versions,
        quota=None,
        path=yaml_path(*path),
    )


def parse_service_file(text: str, *, known_dimensions: set[str] | None = None) -> ServiceFile:
    """Read and check a service file; ServiceFileInvalid lists every mistake found.

    With ``known_dimensions`` (the provider's), prices of other dimensions than those and the
    file's own ``x-meterplane-dimensions`` are refused too.
    """
    data = load_yaml(text)
    errors: list[FileError] = []
    known = None
    if known_dimensions is not None:
        known = set(known_dimensions) | {
            str(k) for k in _mapping(data, DIMENSIONS, []) if DIMENSION_KEY.match(str(k))
        }
    for key in sorted(data):
        if key.startswith("x-meterplane") and key not in EXTENSIONS:
            errors.append(
                FileError(
                    key,
                    f"unknown extension; known: {', '.join(EXTENSIONS)}",
                    "unknown_extension",
                )
            )

    name: str | None = None
    if data.get(SERVICE) is not None:
        spec = _validate(ServiceSpec, data[SERVICE], errors, SERVICE)
        name = spec.name if spec else ""
    elif isinstance(data.get("name"), str) and data["name"].strip():
        name = data["name"].strip()
    if name is None:
        errors.append(
            FileError(
                "name",
                f"the service needs a name: a top-level 'name:' or '{SERVICE}: {{name: ...}}'",
                "missing_service_name",
            )
        )

    plans: dict[str, PlanDecl] = {}
    raw_plans = _mapping(data, PLANS, errors)
    for plan_name, raw in raw_plans.items():
        plan_spec = _validate(PlanSpec, raw, errors, PLANS, plan_name)
        if not 1 <= len(plan_name.strip()) <= 200 or plan_name != plan_name.strip():
            errors.append(
                FileError(
                    yaml_path(PLANS, plan_name),
                    "a plan name has 1 to 200 characters, without leading or trailing spaces",
                    "invalid_plan_name",
                )
            )
        elif plan_spec is not None:
            plans[plan_name] = _plan(plan_name, plan_spec, errors, known)

    for plan_name, raw in _mapping(data, QUOTAS, errors).items():
        quota = _validate(QuotaSpec, raw, errors, QUOTAS, plan_name)
        if plan_name not in plans:
            if plan_name not in raw_plans:
                errors.append(
                    FileError(
                        yaml_path(QUOTAS, plan_name),
                        f"no plan '{plan_name}' in {PLANS}",
                        "unknown_plan",
                    )
                )
            continue
        if quota is not None:
            decl = plans[plan_name]
            plans[plan_name] = PlanDecl(
                name=decl.name,
                currency=decl.currency,
                prices=decl.prices,
                versions=decl.versions,
                quota=QuotaDecl(
                    max_instances_per_customer=quota.max_instances_per_customer,
                    require_payment_method=quota.require_payment_method,
                    fields=frozenset(quota.model_fields_set),
                    path=yaml_path(QUOTAS, plan_name),
                ),
                path=decl.path,
            )

    integrations: list[str] | None = None
    raw_integrations = data.get(INTEGRATIONS)
    if INTEGRATIONS in data:
        if raw_integrations is None:
            integrations = []
        elif not isinstance(raw_integrations, list):
            errors.append(FileError(INTEGRATIONS, "must be a list", "not_a_list"))
        else:
            integrations = []
            for index, item in enumerate(raw_integrations):
                if not isinstance(item, str) or item not in KNOWN_INTEGRATIONS:
                    errors.append(
                        FileError(
                            yaml_path(INTEGRATIONS, index),
                            f"unknown integration {item!r}; known: "
                            f"{', '.join(sorted(KNOWN_INTEGRATIONS))}",
                            "unknown_integration",
                        )
                    )
                else:
                    integrations.append(item)
            integrations = sorted(set(integrations))

    dimensions: list[DimensionDecl] = []
    for key, raw in _mapping(data, DIMENSIONS, errors).items():
        dimension = _validate(DimensionSpec, raw, errors, DIMENSIONS, key)
        if not DIMENSION_KEY.match(key):
            errors.append(
                FileError(
                    yaml_path(DIMENSIONS, key),
                    "a dimension key is 2 to 63 lowercase letters, digits or underscores, "
                    "starting with a letter",
                    "invalid_dimension_key",
                )
            )
        elif dimension is not None:
            dimensions.append(
                DimensionDecl(
                    key=key,
                    unit=dimension.unit,
                    display_name=dimension.display_name,
                    path=yaml_path(DIMENSIONS, key),
                )
            )

    if errors or name is None:
        raise ServiceFileInvalid(errors)
    return ServiceFile(
        name=name,
        plans=list(plans.values()),
        integrations=integrations,
        dimensions=dimensions,
    )
