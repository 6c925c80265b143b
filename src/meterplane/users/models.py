from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, UTCDateTime, enum_column


class Role(StrEnum):
    owner = "owner"  # everything, including users and API keys
    billing = "billing"  # may approve and void invoices, change pricing and settings
    viewer = "viewer"  # reads everything, changes nothing


class ProviderUser(Base):
    __tablename__ = "provider_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    # Stored lower-cased; one login per address across the deployment, so sign-in needs no tenant.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Bumped on password change and removal: sessions carrying an older value are refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
