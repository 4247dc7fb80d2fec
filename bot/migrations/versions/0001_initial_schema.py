"""Initial schema: episodes, assessments, reminders, oncall, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Self-contained on purpose (no import of bot.storage.tables): a migration must
keep describing the schema as it was, whatever the ORM module later becomes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("patient_label", sa.String(length=200), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("opened_at", nullable=False),
        _ts("resolved_at", nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("current_grade", sa.Integer(), nullable=True),
        sa.Column("worst_grade", sa.Integer(), nullable=True),
        sa.Column("recurrent_of", sa.Integer(), nullable=True),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        _ts("symptom_free_until", nullable=True),
        sa.CheckConstraint("product IN ('iv', 'velo')", name=op.f("ck_episodes_product")),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_episodes_status")),
        sa.ForeignKeyConstraint(
            ["recurrent_of"], ["episodes.id"], name=op.f("fk_episodes_recurrent_of_episodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
    )
    op.create_index("ix_episodes_channel_patient", "episodes", ["channel_id", "patient_label"])
    op.create_index(
        "uq_episodes_one_open_per_patient",
        "episodes",
        ["channel_id", "patient_label"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )

    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("inputs_json", JSONDocument, nullable=False),
        sa.Column("result_json", JSONDocument, nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("rulebook_id", sa.String(length=100), nullable=False),
        sa.Column("rulebook_version", sa.String(length=50), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.CheckConstraint("kind IN ('crs', 'icans')", name=op.f("ck_assessments_kind")),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.id"], name=op.f("fk_assessments_episode_id_episodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    op.create_index("ix_assessments_channel_created", "assessments", ["channel_id", "created_at"])
    op.create_index("ix_assessments_episode_id", "assessments", ["episode_id"])

    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _ts("due_at", nullable=False),
        _ts("first_due_at", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("sent_at", nullable=True),
        sa.Column("late_by_seconds", sa.Float(), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        _ts("answered_at", nullable=True),
        sa.Column("coalesced_into", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        sa.CheckConstraint(
            "kind IN ('reassess', 'escalation', 'symptom_free')", name=op.f("ck_reminders_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'sent', 'answered', 'cancelled', 'failed')",
            name=op.f("ck_reminders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["coalesced_into"], ["reminders.id"], name=op.f("fk_reminders_coalesced_into_reminders")
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.id"], name=op.f("fk_reminders_episode_id_episodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
    )
    op.create_index("ix_reminders_episode_status", "reminders", ["episode_id", "status"])
    op.create_index("ix_reminders_status_due_at", "reminders", ["status", "due_at"])

    op.create_table(
        "oncall",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        _ts("set_at", nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_oncall")),
    )

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("patient_label", sa.String(length=200), nullable=True),
        sa.Column("detail_json", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("oncall")
    op.drop_table("reminders")
    op.drop_table("assessments")
    op.drop_table("episodes")
