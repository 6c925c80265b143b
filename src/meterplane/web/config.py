"""Settings of the browser front ends, read from ``METERPLANE_*`` variables like the rest."""

import hashlib
import logging
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[3]


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METERPLANE_", extra="ignore")

    secret_key: str | None = Field(default=None, description="Signs session cookies.")
    web_session_max_age_seconds: int = Field(default=12 * 3600, ge=60)
    web_vendor_dir: Path = Field(
        default=_ROOT / "node_modules",
        description="node_modules holding htmx.org and chart.js (installed by `make setup`).",
    )


@lru_cache
def get_web_settings() -> WebSettings:
    return WebSettings()


@lru_cache
def _ephemeral_key() -> str:
    log.warning(
        "METERPLANE_SECRET_KEY is not set: console and portal sessions use a key that dies "
        "with this process (everyone is logged out on restart; several workers disagree)"
    )
    return secrets.token_urlsafe(32)


def signing_key(purpose: str, secret_key: str | None = None) -> bytes:
    """A key for one purpose, derived from METERPLANE_SECRET_KEY (never the key itself)."""
    base = secret_key or get_web_settings().secret_key or _ephemeral_key()
    return hashlib.sha256(f"meterplane-web:{purpose}:{base}".encode()).digest()
