"""Runtime configuration, read from ``METERPLANE_*`` environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METERPLANE_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{Path('var') / 'meterplane.db'}",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg:// in production.",
    )
    usage_retention_days: int = Field(default=90, ge=1)
    usage_future_tolerance_seconds: int = Field(default=600, ge=0)
    max_batch_samples: int = Field(default=10_000, ge=1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
