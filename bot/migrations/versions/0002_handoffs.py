"""Handoffs: each posted shift handoff, and the (channel, slot) claim that posts a scheduled one once.

Revision ID: 0002_handoffs
Revises: 0001
Create Date: 2026-12-01

Self-contained on purpose (no import of bot.storage.tables), like 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_handoffs"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
    )
    op.create_index("uq_handoffs_channel_slot", "handoffs", ["channel_id", "slot"], unique=True)
    op.create_index("ix_handoffs_channel_posted", "handoffs", ["channel_id", "posted_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_handoffs_channel_posted", table_name="handoffs")
    op.drop_index("uq_handoffs_channel_slot", table_name="handoffs")
    op.drop_table("handoffs")
