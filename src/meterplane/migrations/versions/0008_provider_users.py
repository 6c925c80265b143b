"""provider users (console logins)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import meterplane.kit.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "billing",
                "viewer",
                name="role",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", meterplane.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("removed_at", meterplane.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_users_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_users")),
        sa.UniqueConstraint("email", name=op.f("uq_provider_users_email")),
    )
    with op.batch_alter_table("provider_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_users_provider_id"), ["provider_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("provider_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_users_provider_id"))
    op.drop_table("provider_users")
