"""Export targets: configure, read back without secrets, and report the export's status."""

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterplane.export import crypto
from meterplane.export.azure import (
    ACCOUNT_NAME,
    CONTAINER_NAME,
    AzureBlobSink,
    check_account_key,
    connection_string_account,
    default_account_url,
)
from meterplane.export.gcs import GOOGLE_TOKEN_URIS, GCSSink, parse_service_account
from meterplane.export.models import ExportedHour, ExportTarget, ExportWatermark
from meterplane.export.schemas import ExportErrorOut, StatusOut, TargetIn, TargetOut
from meterplane.export.sinks import ExportFailure, LocalSink, ObjectSink, S3Sink
from meterplane.kit.errors import InvalidInput, NotFound
from meterplane.kit.time import hour_floor
from meterplane.settings import Settings

HOUR = timedelta(hours=1)
# Changing any of these starts a new generation (a new destination, a new watermark).
DESTINATION_FIELDS = (
    "bucket",
    "prefix",
    "endpoint_url",
    "format",
    "gzip",
    "layout",
    "environment",
    "container",
    "account_name",
)
# The secrets each kind uses; switching kinds drops the others.
SECRET_FIELDS = {
    "s3": ("access_key_id", "secret_access_key", "external_id"),
    "gcs": ("service_account_json",),
    "azure": ("account_key", "connection_string"),
    "local": (),
}


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
            "custom storage endpoints are turned off on this server",
            code="endpoint_url_not_allowed",
        )
    target = session.get(ExportTarget, provider_id, with_for_update=True)
    endpoint_url, account_name = body.endpoint_url, body.account_name
    if body.kind == "gcs":
        _check_service_account(body, settings, target)
    if body.kind == "azure":
        endpoint_url, account_name = _azure_destination(body, settings, target)
    config: dict[str, object] = {
        "bucket": body.bucket if body.kind in ("s3", "gcs") else None,
        "prefix": body.prefix.strip("/"),
        "region": body.region,
        "endpoint_url": endpoint_url,
        "role_arn": body.role_arn,
        "container": body.container if body.kind == "azure" else None,
        "account_name": account_name if body.kind == "azure" else None,
        "format": body.format or "csv",
        "gzip": body.gzip,
        "layout": body.layout,
        "environment": body.environment,
    }
    secrets: dict[str, str] | None = None
    if body.access_key_id is not None and body.secret_access_key is not None:
        secrets = {"access_key_id": body.access_key_id, "secret_access_key": body.secret_access_key}
    if body.external_id is not None:
        secrets = {**(secrets or {}), "external_id": body.external_id}
    if body.service_account_json is not None:
        secrets = {"service_account_json": body.service_account_json}
    if body.account_key is not None:
        secrets = {"account_key": body.account_key}
    if body.connection_string is not None:
        secrets = {"connection_string": body.connection_string}
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
            # Resending only the external id (or only the keys) keeps the other part; an azure
            # account key replaces a connection string and the other way round.
            held = _held_secrets(target, body.kind, settings)
            secrets = {**({} if body.kind == "azure" else held), **secrets}
        elif target.kind != body.kind and target.sealed_secrets:
            # Another kind of store: the old kind's secrets are of no use to it.
            held = _held_secrets(target, body.kind, settings)
            target.sealed_secrets = crypto.seal(settings.secret_key, held) if held else None
    target.kind = body.kind
    target.config = config
    target.enabled = body.enabled
    target.updated_at = now
    if body.clear_credentials:
        target.sealed_secrets = None
    if secrets:
        target.sealed_secrets = crypto.seal(settings.secret_key, secrets)
    if body.kind == "azure" and not target.sealed_secrets:
        raise InvalidInput(
            "an azure target needs connection_string, or account_name and account_key",
            code="credentials_required",
        )
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


def _held_secrets(target: ExportTarget, kind: str, settings: Settings) -> dict[str, str]:
    """The stored secrets that a target of ``kind`` uses."""
    if not target.sealed_secrets:
        return {}
    held = crypto.unseal(settings.secret_key, target.sealed_secrets)
    return {name: value for name, value in held.items() if name in SECRET_FIELDS[kind]}


def _check_service_account(body: TargetIn, settings: Settings, target: ExportTarget | None) -> None:
    """A gcs target: a readable service account key whose token endpoint is Google's."""
    if body.service_account_json is None:
        stored = (
            target is not None
            and not body.clear_credentials
            and bool(_held_secrets(target, "gcs", settings))
        )
        if body.endpoint_url is None and not stored:
            # Without a key the client is anonymous: only an emulator (endpoint_url) takes it.
            raise InvalidInput(
                "a gcs target needs service_account_json (anonymous only with endpoint_url)",
                code="credentials_required",
            )
        return
    try:
        info = json.loads(body.service_account_json)
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ValueError('not a service account key ("type": "service_account")')
        parse_service_account(info)
    except (ValueError, ExportFailure) as exc:
        message = exc.message if isinstance(exc, ExportFailure) else str(exc)
        raise InvalidInput(
            f"service_account_json: {message}", code="invalid_service_account"
        ) from None
    token_uri = str(info.get("token_uri") or GOOGLE_TOKEN_URIS[0])
    if token_uri not in GOOGLE_TOKEN_URIS and not settings.export_allow_endpoint_url:
        raise InvalidInput(
            "the service account key's token_uri is not Google's; custom endpoints are turned "
            "off on this server",
            code="endpoint_url_not_allowed",
        )


def _azure_destination(
    body: TargetIn, settings: Settings, target: ExportTarget | None
) -> tuple[str | None, str | None]:
    """An azure target's endpoint override and account name, checked against its secrets."""
    if body.container is None or not CONTAINER_NAME.match(body.container):
        raise InvalidInput(
            "container: 3-63 lowercase letters, digits and single hyphens", code="invalid_target"
        )
    connection_string = body.connection_string
    if connection_string is None and body.account_key is None and target is not None:
        # Secrets not resent: a stored connection string still decides the account.
        connection_string = _held_secrets(target, "azure", settings).get("connection_string")
        if connection_string is not None and (body.account_name or body.endpoint_url):
            raise InvalidInput(
                "the stored connection string names the account and endpoint: send a new "
                "connection_string, or account_key with account_name",
                code="invalid_target",
            )
    if connection_string is not None:
        if body.endpoint_url is not None or body.account_name is not None:
            raise InvalidInput(
                "the connection string names the account and endpoint: omit account_name "
                "and endpoint_url",
                code="invalid_target",
            )
        try:
            name, endpoint = connection_string_account(connection_string)
        except ValueError as exc:
            raise InvalidInput(
                f"connection_string: {exc}", code="invalid_connection_string"
            ) from None
        if name and endpoint == default_account_url(name):
            return None, name
        if not settings.export_allow_endpoint_url:
            raise InvalidInput(
                "the connection string names a custom endpoint; custom storage endpoints are "
                "turned off on this server",
                code="endpoint_url_not_allowed",
            )
        return endpoint, name or None
    if not body.account_name or not ACCOUNT_NAME.match(body.account_name):
        raise InvalidInput(
            "an azure target needs connection_string, or account_name (3-24 lowercase letters "
            "and digits) with account_key",
            code="invalid_target",
        )
    if body.account_key is not None:
        try:
            check_account_key(body.account_key)
        except ValueError as exc:
            raise InvalidInput(f"account_key: {exc}", code="invalid_account_key") from None
    return body.endpoint_url, body.account_name


def get_target(session: Session, provider_id: str) -> ExportTarget:
    target = session.get(ExportTarget, provider_id)
    if target is None:
        raise NotFound("no export target is configured", code="export_target_not_found")
    return target


def local_directory(settings: Settings, provider_id: str) -> Path:
    return settings.export_local_dir / provider_id


def target_out(target: ExportTarget, settings: Settings) -> TargetOut:
    c = target.config
    held: dict[str, str] = {}
    if target.sealed_secrets:
        # Only which secrets exist is revealed; decrypting here needs the key anyway.
        try:
            held = crypto.unseal(settings.secret_key, target.sealed_secrets)
        except Exception:
            held = {}
    has_external = "external_id" in held
    s3 = target.kind == "s3"
    credentials: Literal[
        "access_keys",
        "default_chain",
        "none",
        "service_account",
        "anonymous",
        "account_key",
        "connection_string",
    ] = "none"
    if s3:
        credentials = "access_keys" if "access_key_id" in held else "default_chain"
    elif target.kind == "gcs":
        credentials = "service_account" if "service_account_json" in held else "anonymous"
    elif target.kind == "azure":
        credentials = "connection_string" if "connection_string" in held else "account_key"
    return TargetOut(
        kind=target.kind,
        generation=target.generation,
        bucket=str(c["bucket"]) if c.get("bucket") else None,
        prefix=str(c.get("prefix") or ""),
        region=str(c["region"]) if s3 and c.get("region") else None,
        endpoint_url=str(c["endpoint_url"]) if c.get("endpoint_url") else None,
        role_arn=str(c["role_arn"]) if c.get("role_arn") else None,
        container=str(c["container"]) if c.get("container") else None,
        account_name=str(c["account_name"]) if c.get("account_name") else None,
        credentials=credentials,
        has_external_id=has_external,
        format=c.get("format", "csv"),
        gzip=bool(c.get("gzip")),
        layout=c.get("layout", "meterplane"),
        environment=str(c.get("environment") or "PROD"),
        directory=(
            str(local_directory(settings, target.provider_id)) if target.kind == "local" else None
        ),
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
    endpoint_url = str(c["endpoint_url"]) if c.get("endpoint_url") else None
    if target.kind == "gcs":
        info = secrets.get("service_account_json")
        return GCSSink(
            bucket=str(c["bucket"]),
            service_account_info=json.loads(info) if info else None,
            api_endpoint=endpoint_url,
        )
    if target.kind == "azure":
        name = str(c["account_name"]) if c.get("account_name") else None
        return AzureBlobSink(
            container=str(c["container"]),
            account_name=name,
            account_url=endpoint_url,
            account_key=secrets.get("account_key"),
            connection_string=secrets.get("connection_string"),
        )
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
