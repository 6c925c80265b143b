"""Export configuration, the watermark per provider and target, and what each hour exported.

A target belongs to one provider; changing where or how records are written (kind, bucket,
prefix, layout, format...) starts a new ``generation``: a new watermark from its own start hour,
so a new destination never inherits hours that only the old one received.
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, UTCDateTime


class ExportTarget(Base):
    __tablename__ = "export_targets"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(16))  # "s3" | "gcs" | "azure" | "local"
    # Non-secret settings: bucket, prefix, region, endpoint_url, role_arn, format, gzip,
    # layout, environment (see schemas.TargetIn).
    config: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # Fernet token of a JSON object (access keys, external id); never returned by the API.
    sealed_secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExportWatermark(Base):
    """How far one generation of a provider's target is exported, and its last error."""

    __tablename__ = "export_watermarks"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Every hour in [exported_from, exported_through) has been written at least once.
    exported_from: Mapped[datetime] = mapped_column(UTCDateTime())
    exported_through: Mapped[datetime] = mapped_column(UTCDateTime())
    # The exported_through the completion marker last announced.
    marker_through: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_hour: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Backoff after failures: the scheduled run waits until then (a manual run does not).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ExportedHour(Base):
    """One hour as last written: its revision and what it was built from."""

    __tablename__ = "export_hours"

    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(BigInteger)
    # Row count and column sums of the provider's hourly usage when the hour was built.
    # Hourly values only ever grow (maxima, sums of maxima, node counts), so any late
    # usage changes this; recomputing it is one grouped scan of an indexed range.
    usage_fingerprint: Mapped[str] = mapped_column(String(400))
    # SHA-256 of the canonical records: a new revision only when the records differ.
    content_sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(1024))
    exported_at: Mapped[datetime] = mapped_column(UTCDateTime())
