from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, UTCDateTime, enum_column


class ApiKeyScope(StrEnum):
    admin = "admin"
    ingest = "ingest"


class ZeroUsagePolicy(StrEnum):
    skip = "skip"
    issue = "issue"


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Billing settings.
    close_grace_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    auto_approve_after_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="INV", server_default="INV")
    invoice_number_format: Mapped[str] = mapped_column(
        String(80), default="{prefix}-{year}-{seq:06d}", server_default="{prefix}-{year}-{seq:06d}"
    )
    zero_usage_policy: Mapped[ZeroUsagePolicy] = mapped_column(
        enum_column(ZeroUsagePolicy), default=ZeroUsagePolicy.skip, server_default="skip"
    )

    # Business profile, printed on invoices.
    legal_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    tax_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    support_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_content_type: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[ApiKeyScope] = mapped_column(enum_column(ApiKeyScope))
    # SHA-256 of a 256-bit random secret: a slow password hash adds nothing at that entropy.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
