"""The schema is built by migrations, and models and migrations never drift apart."""

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from meterplane.kit import migrate


def test_models_match_migrations(engine: Engine) -> None:
    migrate.check(engine)


def test_preset_dimensions_are_seeded(engine: Engine) -> None:
    with engine.connect() as conn:
        keys = {row[0] for row in conn.exec_driver_sql("SELECT key FROM dimensions")}
    assert {"cpu_cores", "memory_gib", "storage_gib", "replicas"} <= keys
    assert "usage_hourly" in inspect(engine).get_table_names()
