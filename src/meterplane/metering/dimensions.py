"""The preset dimensions carried by every sample, and how they map onto usage columns;
a provider's custom dimensions, carried as optional extra keys of a sample."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from meterplane.catalog.models import Dimension


@dataclass(frozen=True)
class PresetDimension:
    key: str
    unit: str
    display_name: str


PRESET_DIMENSIONS: tuple[PresetDimension, ...] = (
    PresetDimension("cpu_cores", "core", "CPU cores"),
    PresetDimension("memory_gib", "GiB", "Memory"),
    PresetDimension("storage_gib", "GiB", "Storage"),
    PresetDimension("replicas", "replica", "Replicas"),
)
PRESET_KEYS: tuple[str, ...] = tuple(d.key for d in PRESET_DIMENSIONS)
# Sample fields; ``replicas`` is derived from how many nodes report in an interval.
SAMPLED_KEYS: tuple[str, ...] = ("cpu_cores", "memory_gib", "storage_gib")
UNITS: dict[str, str] = {d.key: d.unit for d in PRESET_DIMENSIONS}
# A sample's identity fields: never a dimension, whatever a provider names its own.
IDENTITY_KEYS: tuple[str, ...] = ("instance_id", "node_id", "timestamp")


@dataclass(frozen=True)
class CustomDimension:
    """A provider's own dimension: optional in samples, metered and billed like the presets."""

    id: int
    key: str
    unit: str
    display_name: str


def custom_dimensions(connection: Connection, provider_id: str) -> tuple[CustomDimension, ...]:
    """The provider's custom dimensions, oldest first (the order of reports and invoice lines)."""
    rows = connection.execute(
        select(Dimension.id, Dimension.key, Dimension.unit, Dimension.display_name)
        .where(Dimension.provider_id == provider_id)
        .order_by(Dimension.id)
    )
    return tuple(
        CustomDimension(row.id, row.key, row.unit, row.display_name)
        for row in rows
        if row.key not in IDENTITY_KEYS and row.key not in UNITS
    )
