"""Metering integration: the provider's export target, its status, and backfill runs."""

from datetime import timedelta

from fastapi import APIRouter

from meterplane.api.deps import Admin, AppSettings, Factory, Now, unit_of_work
from meterplane.export import runner
from meterplane.export import service as export
from meterplane.export.schemas import ExportErrorOut, RunIn, RunOut, StatusOut, TargetIn, TargetOut
from meterplane.kit.errors import InvalidInput

router = APIRouter(prefix="/v1/export", tags=["export"])
MAX_API_RUN = timedelta(days=31)


@router.put("/target")
def put_target(
    body: TargetIn, caller: Admin, factory: Factory, now: Now, settings: AppSettings
) -> TargetOut:
    with unit_of_work(factory) as session:
        target = export.configure_target(
            session, caller.provider_id, body, settings=settings, now=now
        )
        return export.target_out(target, settings)


@router.get("/target")
def get_target(caller: Admin, factory: Factory, settings: AppSettings) -> TargetOut:
    with unit_of_work(factory) as session:
        return export.target_out(export.get_target(session, caller.provider_id), settings)


@router.get("/status")
def get_status(caller: Admin, factory: Factory, now: Now, settings: AppSettings) -> StatusOut:
    with unit_of_work(factory) as session:
        return export.export_status(session, caller.provider_id, settings=settings, now=now)


@router.post("/run")
def run_export(
    body: RunIn, caller: Admin, factory: Factory, now: Now, settings: AppSettings
) -> RunOut:
    """Export (or re-check) the closed hours of [from, to); up to 31 days per request."""
    if body.start >= body.end:
        raise InvalidInput("'from' must be before 'to'", code="invalid_range")
    if body.end - body.start > MAX_API_RUN:
        raise InvalidInput(
            "at most 31 days per request; use `meterplane export run` for longer backfills",
            code="range_too_large",
        )
    report = runner.run_provider(
        factory, caller.provider_id, settings=settings, now=now, start=body.start, end=body.end
    )
    return RunOut(
        hours_exported=report.hours_exported,
        revisions=report.revisions,
        records=report.records,
        objects=report.objects,
        failed_hour=report.failed_hour,
        error=ExportErrorOut(
            code=report.error_code,
            message=report.error_message or "",
            hour=report.failed_hour,
            at=now,
        )
        if report.error_code
        else None,
        exported_through=report.exported_through,
    )
