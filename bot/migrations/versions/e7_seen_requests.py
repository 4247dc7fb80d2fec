"""Seen Slack requests: the replay guard's memory, shared by every replica.

Revision ID: e7_seen_requests
Revises: 0002_handoffs
Create Date: 2026-12-01

A signed request's signature is its key; a second INSERT of the same signature fails on the
primary key, which is how every replica learns it is a replay. Rows older than the replay window
are pruned by the bot.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7_seen_requests"
down_revision: str | Sequence[str] | None = "0002_handoffs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_requests",
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_seen_requests")),
    )
    op.create_index("ix_seen_requests_seen_at", "seen_requests", ["seen_at"])


def downgrade() -> None:
    op.drop_table("seen_requests")
