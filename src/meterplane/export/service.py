"""Export targets: configure, read back without secrets, and report the export's status."""

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.export import crypto
from meterplane.export.models import ExportedHour, ExportTarget, ExportWatermark
from meterplane.export.schemas import ExportErrorOut, StatusOut, TargetIn, TargetOut
from meterplane.export.sinks import LocalSink, ObjectSink, S3Sink
from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.kit.time import hour_floor
from meterplane.settings import Settings

HOUR = timedelta(hours=1)
# Changing any of these starts a new generation (a new destination, a new watermark).
DESTINATION_FIELDS = ("bucket", "prefix", "endpoint_url", "format", "gzip", "layout", "environment")


def closed_through(now: datetime, settings: Settings) -> datetime:
    """Hours before this one are closed: they ended more than lag + ingest tolerance ago."""
    lag = settings.export_lag_seconds + settings.usage_future_tolerance_seconds
    return hour_floor(now - timedelta(seconds=lag))


def configure_target(
    session: Session, provider_id: str, body: TargetIn, *, settings: Settings, now: datetime
) -> ExportTarget:
    """Create or replace the provider's target; secrets are sealed, kept when not resent."""
    if body.endpoint_url is not None and not settings.export_allow_endpoint_url:
        raise InvalidInput(
            "custom S3 endpoints are turned off on this server", code="endpoint_url_not_allowed"
        )
    config: dict[str, object] = {
        "bucket": body.bucket if body.kind == "s3" else None,
        "prefix": body.prefix.strip("/"),
        "region": body.region,
        "endpoint_url": body.endpoint_url,
        "role_arn": body.role_arn,
        "format": body.format or "csv",
        "gzip": body.gzip,
        "layout": body.layout,
        "environment": body.environment,
    }
    target = session.get(ExportTarget, provider_id, with_for_update=True)
    secrets: dict[str, str] | None = None
    if body.access_key_id is not None and body.secret_access_key is not None:
        secrets = {"access_key_id": body.access_key_id, "secret_access_key": body.secret_access_key}
    if body.external_id is not None:
        secrets = {**(secrets or {}), "external_id": body.external_id}
    start = hour_floor(body.start_at or now)
    if target is None:
        target = ExportTarget(
            provider_id=provider_id, generation=1, kind=body.kind, created_at=now, updated_at=now
        )
        session.add(target)
        changed = True
    else:
        changed = target.kind != body.kind or any(
            target.config.get(name) != config[name] for name in DESTINATION_FIELDS
        )
        if changed:
            target.generation += 1
        if secrets is not None and target.sealed_secrets and not body.clear_credentials:
            # Resending only the external id (or only the keys) keeps the other part.
            secrets = {**crypto.unseal(settings.secret_key, target.sealed_secrets), **secrets}
    target.kind = body.kind
    target.config = config
    target.enabled = body.enabled
    target.updated_at = now
    if body.clear_credentials:
        target.sealed_secrets = None
    if secrets:
        target.sealed_secrets = crypto.seal(settings.secret_key, secrets)
    session.flush()
    watermark = session.get(ExportWatermark, (provider_id, target.generation))
    if watermark is None:
        session.add(
            ExportWatermark(
                provider_id=provider_id,
                generation=target.generation,
                exported_from=start,
                exported_through=start,
                consecutive_failures=0,
            )
        )
    elif body.start_at is not None and changed is False and start < watermark.exported_from:
        raise InvalidInput(
            "start_at cannot move back on an existing target; backfill with POST /v1/export/run",
            code="start_at_moved_back",
        )
    session.flush()
    return target


def get_target(session: Session, provider_id: str) -> ExportTarget:
    target = session.get(ExportTarget, provider_id)
    if target is None:
        raise NotFound("no export target is configured", code="export_target_not_found")
    return target


def local_directory(settings: Settings, provider_id: str) -> Path:
    return settings.export_local_dir / provider_id


def target_out(target: ExportTarget, settings: Settings) -> TargetOut:
    c = target.config
    has_keys = has_external = False
    if target.sealed_secrets:
        # Only which secrets exist is revealed; decrypting here needs the key anyway.
        try:
            held = crypto.unseal(settings.secret_key, target.sealed_secrets)
        except Exception:
            held = {}
        has_keys = "access_key_id" in held
        has_external = "external_id" in held
    s3 = target.kind == "s3"
    return TargetOut(
        kind=target.kind,
        generation=target.generation,
        bucket=str(c["bucket"]) if c.get("bucket") else None,
        prefix=str(c.get("prefix") or ""),
        region=str(c["region"]) if s3 and c.get("region") else None,
        endpoint_url=str(c["endpoint_url"]) if c.get("endpoint_url") else None,
        role_arn=str(c["role_arn"]) if c.get("role_arn") else None,
        credentials=("access_keys" if has_keys else "default_chain") if s3 else "none",
        has_external_id=has_external,
        format=c.get("format", "csv"),
        gzip=bool(c.get("gzip")),
        layout=c.get("layout", "meterplane"),
        environment=str(c.get("environment") or "PROD"),
        directory=None if s3 else str(local_directory(settings, target.provider_id)),
        enabled=target.enabled,
        created_at=target.created_at,
        updated_at=target.updated_at,
    )


def make_sink(target: ExportTarget, settings: Settings) -> ObjectSink:
    """The real sink for a target (tests may pass their own factory to the runner)."""
    if target.kind == "local":
        return LocalSink(local_directory(settings, target.provider_id))
    secrets = (
        crypto.unseal(settings.secret_key, target.sealed_secrets) if target.sealed_secrets else {}
    )
    c = target.config
    return S3Sink(
        bucket=str(c["bucket"]),
        region=str(c.get("region") or "us-east-1"),
        endpoint_url=str(c["endpoint_url"]) if c.get("endpoint_url") else None,
        access_key_id=secrets.get("access_key_id"),
        secret_access_key=secrets.get("secret_access_key"),
        role_arn=str(c["role_arn"]) if c.get("role_arn") else None,
        external_id=secrets.get("external_id"),
    )


def export_status(
    session: Session, provider_id: str, *, settings: Settings, now: datetime
) -> StatusOut:
    """How far the export is, what is pending, and the last error if the export is failing."""
    target = session.get(ExportTarget, provider_id)
    if target is None:
        return StatusOut(configured=False)
    watermark = session.get(ExportWatermark, (provider_id, target.generation))
    frontier = closed_through(now, settings)
    status = StatusOut(
        configured=True,
        enabled=target.enabled,
        kind=target.kind,
        generation=target.generation,
        closed_through=frontier,
    )
    if watermark is None:
        return status
    revised = session.scalar(
        select(func.count()).where(
            ExportedHour.provider_id == provider_id,
            ExportedHour.generation == target.generation,
            ExportedHour.revision > 0,
        )
    )
    status.exported_from = watermark.exported_from
    status.exported_through = watermark.exported_through
    status.pending_hours = max(int((frontier - watermark.exported_through) / HOUR), 0)
    status.revised_hours = int(revised or 0)
    status.last_run_at = watermark.last_run_at
    status.last_success_at = watermark.last_success_at
    status.consecutive_failures = watermark.consecutive_failures
    status.next_attempt_at = watermark.next_attempt_at
    if watermark.last_error_code is not None:
        status.error = ExportErrorOut(
            code=watermark.last_error_code,
            message=watermark.last_error_message or "",
            hour=watermark.last_error_hour,
            at=watermark.last_error_at,
        )
    return status
