from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from meterplane.kit.db import Base, UTCDateTime, enum_column


class TokenKind(StrEnum):
    link = "link"  # minted by the provider's app: POST /v1/customers/{id}/portal-sessions
    email = "email"  # a magic link the customer asked for on the sign-in page


class PortalToken(Base):
    """A single-use way into the portal for one customer; only the token's hash is stored."""

    __tablename__ = "portal_tokens"
    __table_args__ = (Index("ix_portal_tokens_customer", "provider_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind))
    # SHA-256 of 256 random bits: enough against guessing, no slow hash needed.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address a magic link was emailed to.
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
