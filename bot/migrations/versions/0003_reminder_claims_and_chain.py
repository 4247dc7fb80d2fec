"""Fenced reminder claims and the per-channel escalation chain.

Revision ID: 0003
Revises: 0002_handoffs
Create Date: 2026-12-01

reminders: claim_token (fences completion: only the holder of the current claim may record it),
lease_until (when a claim may be taken over), maybe_posted (an earlier attempt may have reached
Slack, so the thread is read before posting again), step (position in the escalation chain).
oncall: the chain after the primary target: secondary target and delays, channel delay, repeat.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "e7_seen_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("maybe_posted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("oncall") as batch:
        batch.add_column(sa.Column("secondary", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("secondary_after_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("channel_after_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("repeat_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oncall") as batch:
        for name in ("repeat_seconds", "channel_after_seconds", "secondary_after_seconds", "secondary"):
            batch.drop_column(name)
    with op.batch_alter_table("reminders") as batch:
        for name in ("step", "maybe_posted", "lease_until", "claim_token"):
            batch.drop_column(name)
