"""Usage storage. Quantities are BIGINT nano-units (see kit.quantity): exact and fast to sum.

Three levels, each maintained at ingest so reads never touch finer data than they need:
node intervals (max per node per 5 minutes), instance intervals (sum over nodes) and
hourly usage (max over the intervals of the hour).
"""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, BigIntPK, UTCDateTime


class NodeIntervalUsage(Base):
    __tablename__ = "usage_node_intervals"

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime())
    cpu_cores: Mapped[int] = mapped_column(BigInteger)
    memory_gib: Mapped[int] = mapped_column(BigInteger)
    storage_gib: Mapped[int] = mapped_column(BigInteger)


class IntervalUsage(Base):
    __tablename__ = "usage_intervals"

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime())
    cpu_cores: Mapped[int] = mapped_column(BigInteger)
    memory_gib: Mapped[int] = mapped_column(BigInteger)
    storage_gib: Mapped[int] = mapped_column(BigInteger)
    replicas: Mapped[int] = mapped_column(BigInteger)


class HourlyUsage(Base):
    __tablename__ = "usage_hourly"
    __table_args__ = (Index("ix_usage_hourly_provider_hour", "provider_id", "hour_start"),)

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    cpu_cores: Mapped[int] = mapped_column(BigInteger)
    memory_gib: Mapped[int] = mapped_column(BigInteger)
    storage_gib: Mapped[int] = mapped_column(BigInteger)
    replicas: Mapped[int] = mapped_column(BigInteger)


class UsageRejection(Base):
    """A sample refused at ingest, kept with its reason so nothing is silently dropped."""

    __tablename__ = "usage_rejections"
    __table_args__ = (Index("ix_usage_rejections_provider_received", "provider_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    batch_id: Mapped[str] = mapped_column(String(40))
    row_index: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    instance_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Custom dimensions (a provider's own, see catalog.models.Dimension) in long format: one row
# per dimension, written only for the dimensions a sample carries. Same three levels and same
# rules as the preset tables above; the preset tables are untouched by custom values.


class NodeIntervalCustomUsage(Base):
    __tablename__ = "usage_node_intervals_custom"

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[int] = mapped_column(BigInteger)


class IntervalCustomUsage(Base):
    __tablename__ = "usage_intervals_custom"

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id"), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[int] = mapped_column(BigInteger)


class HourlyCustomUsage(Base):
    __tablename__ = "usage_hourly_custom"
    __table_args__ = (Index("ix_usage_hourly_custom_provider_hour", "provider_id", "hour_start"),)

    instance_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("instances.pk"), primary_key=True
    )
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id"), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    value: Mapped[int] = mapped_column(BigInteger)
