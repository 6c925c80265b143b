"""portal tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import meterplane.kit.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("link", "email", name="tokenkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_portal_tokens_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_portal_tokens_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_tokens_token_hash")),
    )
    op.create_index("ix_portal_tokens_customer", "portal_tokens", ["provider_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_portal_tokens_customer", table_name="portal_tokens")
    op.drop_table("portal_tokens")
