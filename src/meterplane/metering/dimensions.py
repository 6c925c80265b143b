"""The preset dimensions carried by every sample, and how they map onto usage columns."""

from dataclasses import dataclass


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
