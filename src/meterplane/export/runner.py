"""The export loop: closed hours after the watermark, then revisions of exported hours that
changed, then the completion marker. Each hour is written before it is recorded, so a crash in
between only rewrites the same deterministic key on the next run (exactly once in effect)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from meterplane.export import formats
from meterplane.export.models import ExportedHour, ExportTarget, ExportWatermark
from meterplane.export.records import (
    EMPTY,
    ExportContext,
    UsageRecord,
    build_hour,
    content_sha256,
    load_context,
    usage_fingerprints,
)
from meterplane.export.service import closed_through, get_target, make_sink
from meterplane.export.sinks import ExportFailure, ObjectSink
from meterplane.kit.db import transaction
from meterplane.kit.errors import InvalidInput, MeterplaneError
from meterplane.kit.time import hour_floor
from meterplane.settings import Settings

HOUR = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=1)
SinkFactory = Callable[[ExportTarget, Settings], ObjectSink]
Progress = Callable[[int, int], None]


@dataclass
class ExportReport:
    providers: int = 0
    hours_exported: int = 0
    revisions: int = 0
    records: int = 0
    objects: int = 0
    skipped: int = 0  # providers waiting for their backoff
    failed_hour: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    errors: list[str] = field(default_factory=list)
    exported_through: datetime | None = None

    def add(self, other: "ExportReport") -> None:
        self.providers += other.providers
        self.hours_exported += other.hours_exported
        self.revisions += other.revisions
        self.records += other.records
        self.objects += other.objects
        self.skipped += other.skipped
        self.errors += other.errors


@dataclass(frozen=True)
class _Plan:
    """One target's settings as plain values, usable outside any session."""

    provider_id: str
    generation: int
    prefix: str
    fmt: str
    gzip: bool
    layout: str
    environment: str


def _key_prefix(prefix: str) -> str:
    return f"{prefix}/" if prefix else ""


def _hour_path(hour: datetime) -> str:
    return hour.strftime("%Y/%m/%d/%H")


def hour_key(plan: _Plan, hour: datetime, revision: int) -> str:
    """``PREFIX/YYYY/MM/DD/HH/<provider>-<YYYYMMDDTHHMM>Z-r<revision>.<ext>``."""
    name = f"{plan.provider_id}-{hour.strftime('%Y%m%dT%H%M')}Z-r{revision}"
    ext = formats.extension(plan.fmt, plan.gzip)
    return f"{_key_prefix(plan.prefix)}{_hour_path(hour)}/{name}.{ext}"


def marker_key(prefix: str) -> str:
    return f"{_key_prefix(prefix)}_meterplane/last_success.json"


def omnistrate_root(prefix: str) -> str:
    return f"{_key_prefix(prefix)}omnistrate-metering"


def _safe(segment: str) -> str:
    return segment.replace("/", "-") or "-"


def _objects(
    plan: _Plan, ctx: ExportContext, records: list[UsageRecord], hour: datetime, rev: int
) -> tuple[str, list[tuple[str, bytes, str]]]:
    """The objects of one hour (key, body, content type) and the key recorded for it."""
    if plan.layout == "omnistrate":
        root = omnistrate_root(plan.prefix)
        objects = [
            (
                f"{root}/{_safe(service)}/{_safe(plan.environment)}/{plan_id}/"
                f"{_hour_path(hour)}/{subscription}.json",
                body,
                "application/json",
            )
            for (service, plan_id, subscription), body in sorted(
                formats.omnistrate_files(records, ctx, plan.environment).items()
            )
        ]
        return f"{root}/*/{_safe(plan.environment)}/*/{_hour_path(hour)}/", objects
    key = hour_key(plan, hour, rev)
    body = formats.encode(records, plan.fmt, use_gzip=plan.gzip)
    content_type = formats.CONTENT_TYPES[plan.fmt]
    return key, [(key, body, content_type)]


class _Run:
    def __init__(
        self,
        factory: sessionmaker[Session],
        provider_id: str,
        *,
        settings: Settings,
        now: datetime,
        sink_factory: SinkFactory,
    ) -> None:
        self.factory = factory
        self.provider_id = provider_id
        self.settings = settings
        self.now = now
        self.sink_factory = sink_factory
        self.report = ExportReport(providers=1)
        self._sink: ObjectSink | None = None
        with transaction(factory) as session:
            target = get_target(session, provider_id)
            c = target.config
            self.plan = _Plan(
                provider_id=provider_id,
                generation=target.generation,
                prefix=str(c.get("prefix") or ""),
                fmt=str(c.get("format") or "csv"),
                gzip=bool(c.get("gzip")),
                layout=str(c.get("layout") or "meterplane"),
                environment=str(c.get("environment") or "PROD"),
            )
            self.target = target
            self.enabled = target.enabled
            self.ctx = load_context(session, provider_id)

    @property
    def sink(self) -> ObjectSink:
        if self._sink is None:
            self._sink = self.sink_factory(self.target, self.settings)
        return self._sink

    def watermark(self, session: Session) -> ExportWatermark:
        held = session.get(ExportWatermark, (self.provider_id, self.plan.generation))
        if held is None:
            raise InvalidInput("the export target has no watermark", code="export_not_ready")
        return held

    def export_hour(self, hour: datetime, *, known_fingerprint: str | None = None) -> None:
        """Write the hour if it was never written or its records changed; then record it."""
        with transaction(self.factory) as session:
            # The fingerprint is read before the records: usage committed in between makes
            # the stored fingerprint stale, so the next run looks at the hour again.
            fingerprint = known_fingerprint or usage_fingerprints(
                session, self.provider_id, hour, hour + HOUR
            ).get(hour, EMPTY)
            existing = session.get(ExportedHour, (self.provider_id, self.plan.generation, hour))
            records = build_hour(session, self.ctx, hour)
            digest = content_sha256(records)
            if existing is not None and existing.content_sha256 == digest:
                existing.usage_fingerprint = fingerprint
                return
        revision = 0 if existing is None else existing.revision + 1
        recorded_key, objects = _objects(self.plan, self.ctx, records, hour, revision)
        for key, body, content_type in objects:
            self.sink.put(key, body, content_type)
        self.report.objects += len(objects)
        self.report.records += len(records)
        if existing is None:
            self.report.hours_exported += 1
        else:
            self.report.revisions += 1
        with transaction(self.factory) as session:
            row = session.get(ExportedHour, (self.provider_id, self.plan.generation, hour))
            if row is None:
                row = ExportedHour(
                    provider_id=self.provider_id, generation=self.plan.generation, hour_start=hour
                )
                session.add(row)
            row.revision = revision
            row.records = len(records)
            row.usage_fingerprint = fingerprint
            row.content_sha256 = digest
            row.object_key = recorded_key
            row.exported_at = self.now
            session.flush()
            _advance(session, self.watermark(session))

    def changed_hours(self) -> list[tuple[datetime, str]]:
        """Exported hours whose usage changed since they were written (late usage)."""
        retention = timedelta(days=self.settings.usage_retention_days)
        with transaction(self.factory) as session:
            watermark = self.watermark(session)
            # Older hours cannot change: ingest refuses samples beyond the retention window.
            start = max(watermark.exported_from, hour_floor(self.now - retention))
            end = watermark.exported_through
            if start >= end:
                return []
            current = usage_fingerprints(session, self.provider_id, start, end)
            stored = session.execute(
                select(ExportedHour.hour_start, ExportedHour.usage_fingerprint).where(
                    ExportedHour.provider_id == self.provider_id,
                    ExportedHour.generation == self.plan.generation,
                    ExportedHour.hour_start >= start,
                    ExportedHour.hour_start < end,
                )
            )
            return [
                (hour, current.get(hour, EMPTY))
                for hour, fingerprint in stored
                if current.get(hour, EMPTY) != fingerprint
            ]

    def write_markers(self) -> None:
        with transaction(self.factory) as session:
            watermark = self.watermark(session)
            through, start = watermark.exported_through, watermark.exported_from
            if watermark.marker_through == through and not self.report.revisions:
                return
        stamp = formats.rfc3339(self.now)
        marker = {
            "provider_id": self.provider_id,
            "layout": self.plan.layout,
            "format": self.plan.fmt if self.plan.layout == "meterplane" else "json",
            "exported_from": formats.rfc3339(start),
            "exported_through": formats.rfc3339(through),
            "written_at": stamp,
            "services": {
                service_id: {
                    "name": name,
                    "exported_through": formats.rfc3339(through),
                    "written_at": stamp,
                }
                for service_id, name in sorted(self.ctx.services.items())
            },
        }
        if self.plan.layout == "omnistrate":
            entries = {
                f"{self.ctx.services[info.service_id]}:{self.plan.environment}:{plan_id}": {
                    "last_processed_to": formats.rfc3339(through),
                    "last_updated_at": stamp,
                }
                for plan_id, info in sorted(self.ctx.plans.items())
            }
            self.sink.put(
                f"{omnistrate_root(self.plan.prefix)}/last_success_export.json",
                json.dumps(entries, indent=2, sort_keys=True).encode(),
                "application/json",
            )
            self.report.objects += 1
        self.sink.put(
            marker_key(self.plan.prefix),
            json.dumps(marker, indent=2).encode(),
            "application/json",
        )
        self.report.objects += 1
        with transaction(self.factory) as session:
            self.watermark(session).marker_through = through

    def fail(self, hour: datetime | None, code: str, message: str) -> None:
        with transaction(self.factory) as session:
            watermark = self.watermark(session)
            watermark.last_run_at = self.now
            watermark.consecutive_failures += 1
            watermark.last_error_code = code
            watermark.last_error_message = message[:2000]
            watermark.last_error_hour = hour
            watermark.last_error_at = self.now
            backoff = min(
                timedelta(minutes=1) * 2 ** (watermark.consecutive_failures - 1), MAX_BACKOFF
            )
            watermark.next_attempt_at = self.now + backoff
            self.report.exported_through = watermark.exported_through
        self.report.failed_hour = hour
        self.report.error_code = code
        self.report.error_message = message
        self.report.errors.append(f"{self.provider_id}: {code}: {message}")

    def succeed(self) -> None:
        with transaction(self.factory) as session:
            watermark = self.watermark(session)
            watermark.last_run_at = self.now
            watermark.last_success_at = self.now
            watermark.consecutive_failures = 0
            watermark.last_error_code = None
            watermark.last_error_message = None
            watermark.last_error_hour = None
            watermark.last_error_at = None
            watermark.next_attempt_at = None
            self.report.exported_through = watermark.exported_through


def _advance(session: Session, watermark: ExportWatermark) -> None:
    """Move exported_through over every contiguous exported hour."""
    hours = session.scalars(
        select(ExportedHour.hour_start)
        .where(
            ExportedHour.provider_id == watermark.provider_id,
            ExportedHour.generation == watermark.generation,
            ExportedHour.hour_start >= watermark.exported_through,
        )
        .order_by(ExportedHour.hour_start)
    )
    through = watermark.exported_through
    for hour in hours:
        if hour != through:
            break
        through += HOUR
    watermark.exported_through = through


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out = []
    hour = start
    while hour < end:
        out.append(hour)
        hour += HOUR
    return out


def run_provider(
    factory: sessionmaker[Session],
    provider_id: str,
    *,
    settings: Settings,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    sink_factory: SinkFactory = make_sink,
    progress: Progress | None = None,
    respect_backoff: bool = False,
) -> ExportReport:
    """Export one provider: due hours and revisions, or (with start/end) a backfill range.

    A backfill writes hours never written and rewrites, as a new revision, hours whose
    records changed; the watermark then moves over every contiguous exported hour.
    """
    run = _Run(factory, provider_id, settings=settings, now=now, sink_factory=sink_factory)
    if not run.enabled and start is None:
        return ExportReport()
    frontier = closed_through(now, settings)
    with transaction(factory) as session:
        watermark = run.watermark(session)
        if respect_backoff and watermark.next_attempt_at and now < watermark.next_attempt_at:
            return ExportReport(skipped=1)
        through, exported_from = watermark.exported_through, watermark.exported_from
    work: list[tuple[datetime, str | None]]
    if start is not None and end is not None:
        first = hour_floor(start)
        last = min(end if end == hour_floor(end) else hour_floor(end) + HOUR, frontier)
        work = [(hour, None) for hour in _hours(first, last)]
    else:
        cap = through + HOUR * settings.export_max_hours_per_run
        work = [(hour, None) for hour in _hours(through, min(frontier, cap))]
        try:
            work += run.changed_hours()
        except MeterplaneError as exc:
            run.fail(None, exc.code, exc.message)
            return run.report
    current: datetime | None = None
    try:
        for done, (hour, fingerprint) in enumerate(work):
            current = hour
            run.export_hour(hour, known_fingerprint=fingerprint)
            if progress is not None:
                progress(done + 1, len(work))
        current = None
        if start is not None and end is not None and work:
            _extend_back(factory, run, work[0][0], exported_from)
        run.write_markers()
    except ExportFailure as exc:
        run.fail(current, exc.code, exc.message)
        return run.report
    except MeterplaneError as exc:
        run.fail(current, exc.code, exc.message)
        return run.report
    run.succeed()
    return run.report


def _extend_back(
    factory: sessionmaker[Session], run: _Run, first: datetime, exported_from: datetime
) -> None:
    """A backfill that covers every hour before exported_from moves it back."""
    if first >= exported_from:
        return
    with transaction(factory) as session:
        written = set(
            session.scalars(
                select(ExportedHour.hour_start).where(
                    ExportedHour.provider_id == run.provider_id,
                    ExportedHour.generation == run.plan.generation,
                    ExportedHour.hour_start >= first,
                    ExportedHour.hour_start < exported_from,
                )
            )
        )
        if all(hour in written for hour in _hours(first, exported_from)):
            watermark = run.watermark(session)
            watermark.exported_from = first
            _advance(session, watermark)
