"""Runtime configuration, read from ``METERPLANE_*`` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    secret_key: str | None = Field(
        default=None,
        description="Encrypts stored secrets (export credentials); any long random string.",
    )
    export_lag_seconds: int = Field(
        default=900, ge=0, description="An hour is exported once it ended this long ago."
    )
    export_local_dir: Path = Field(
        default=Path("var") / "export",
        description="Root of local-directory export targets (one folder per provider).",
    )
    export_max_hours_per_run: int = Field(default=168, ge=1)
    export_allow_endpoint_url: bool = Field(
        default=False,
        description="Let providers point S3 targets at their own endpoint (S3-compatible stores).",
    )

    # Outgoing mail (notifications); unset host: emails wait in the outbox as "pending".
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    smtp_from_address: str = "billing@meterplane.localhost"
    portal_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of the portal and console."
    )

    # Payments through Stripe Connect (the platform's keys; providers connect their own account).
    stripe_secret_key: str | None = Field(default=None, description="Platform secret key.")
    stripe_publishable_key: str | None = Field(
        default=None, description="Platform publishable key, handed to Stripe.js in the portal."
    )
    stripe_client_id: str | None = Field(default=None, description="Connect client id (ca_…).")
    stripe_webhook_secret: str | None = Field(default=None, description="whsec_… of the endpoint.")
    stripe_api_base: str = "https://api.stripe.com"
    stripe_connect_base: str = "https://connect.stripe.com"
    stripe_js_url: str = "https://js.stripe.com/v3/"
    stripe_connect_redirect_uri: str | None = Field(
        default=None, description="OAuth redirect URI (…/v1/stripe/connect/callback)."
    )
    stripe_connect_state_ttl_seconds: int = Field(default=1800, ge=60)
    stripe_send_off_session: bool = Field(
        default=True, description="Send off_session=true when confirming (localstripe: false)."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
