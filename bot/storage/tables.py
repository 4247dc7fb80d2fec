"""The database schema, as SQLAlchemy 2 typed ORM classes.

These classes stay inside `bot.storage`; the rest of the bot sees the frozen
records in `bot.storage.records`, so no lazy-load or detached-instance surprise
can leak into Slack handlers or the reminder thread. Migrations in
`bot/migrations/versions` must be kept in step with this module (a test compares
the migrated schema against this metadata).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.storage.kinds import AssessmentKind, EpisodeStatus, Product, ReminderKind, ReminderStatus

__all__ = [
    "AssessmentRow",
    "AuditRow",
    "Base",
    "EpisodeRow",
    "HandoffRow",
    "OncallRow",
    "ReminderRow",
    "SeenRequestRow",
    "UTCDateTime",
]

# Deterministic constraint names, so later migrations can drop/alter them by name
# on both PostgreSQL and SQLite (batch mode).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    PostgreSQL keeps `timestamptz` natively; SQLite stores text without an
    offset, so values are normalised to UTC on the way in and tagged as UTC on
    the way out. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use an aware UTC datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # SQLite compares these as text; a uniform offset-free form keeps ordering right.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")

EPISODE_STATUSES = tuple(EpisodeStatus)
PRODUCTS = tuple(Product)
ASSESSMENT_KINDS = tuple(AssessmentKind)
REMINDER_KINDS = tuple(ReminderKind)
REMINDER_STATUSES = tuple(ReminderStatus)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class EpisodeRow(Base):
    """One CRS episode of one patient in one channel, from first assessment to resolution."""

    __tablename__ = "episodes"
    __table_args__ = (
        CheckConstraint(_one_of("status", EPISODE_STATUSES), name="status"),
        CheckConstraint(_one_of("product", PRODUCTS), name="product"),
        Index("ix_episodes_channel_patient", "channel_id", "patient_label"),
        # At most one open episode per patient label in a channel, even when two
        # replicas record assessments for a new patient at the same moment.
        Index(
            "uq_episodes_one_open_per_patient",
            "channel_id",
            "patient_label",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    patient_label: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    current_grade: Mapped[int | None]
    worst_grade: Mapped[int | None]
    recurrent_of: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    symptom_free_until: Mapped[datetime | None]


class AssessmentRow(Base):
    """One graded CRS or ICANS assessment, with exactly what was typed and what the rulebook said."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ASSESSMENT_KINDS), name="kind"),
        Index("ix_assessments_episode_id", "episode_id"),
        Index("ix_assessments_channel_created", "channel_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    channel_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    inputs_json: Mapped[dict[str, Any]]
    result_json: Mapped[dict[str, Any]]
    grade: Mapped[int | None]
    rulebook_id: Mapped[str] = mapped_column(String(100))
    rulebook_version: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    message_ts: Mapped[str | None] = mapped_column(String(32))


class ReminderRow(Base):
    """A reminder's whole life: scheduled, claimed by one replica, posted, answered.

    The row is the source of truth (not an APScheduler job), so a restarted or
    second replica sees exactly what is still owed.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint(_one_of("kind", REMINDER_KINDS), name="kind"),
        CheckConstraint(_one_of("status", REMINDER_STATUSES), name="status"),
        Index("ix_reminders_status_due_at", "status", "due_at"),
        Index("ix_reminders_episode_status", "episode_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    # The originally scheduled time; due_at moves on retry backoff, this does not,
    # so "late by" stays honest after failed posts.
    first_due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    late_by_seconds: Mapped[float | None] = mapped_column(Float)
    message_ts: Mapped[str | None] = mapped_column(String(32))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None]
    # Set when this reminder was folded into another one's post (catch-up after downtime).
    coalesced_into: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # Fencing: the token of the claim now holding the row; only its holder may record the outcome.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # An earlier attempt may have reached Slack (timeout, crash, lost database): read the thread first.
    maybe_posted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Position in the escalation chain (0 for everything that is not an escalation).
    step: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class OncallRow(Base):
    """The channel's escalation chain: primary target, then secondary after a delay, then the channel."""

    __tablename__ = "oncall"

    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(200))
    secondary: Mapped[str | None] = mapped_column(String(200))
    secondary_after_seconds: Mapped[int | None]
    channel_after_seconds: Mapped[int | None]
    repeat_seconds: Mapped[int | None]
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime]


class AuditRow(Base):
    """Append-only record of everything the bot did or was asked to do."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    channel_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    patient_label: Mapped[str | None] = mapped_column(String(200))
    detail_json: Mapped[dict[str, Any]]


class SeenRequestRow(Base):
    """A signed Slack request already acted on (by its signature, or `event:<event_id>` for an Events API
    request, which Slack's retries keep), kept for the replay window so a replayed copy or a retry does
    nothing on any replica."""

    __tablename__ = "seen_requests"
    # One B-tree (the signature's) and no other index, so a mark writes one page (migration 0004).
    __table_args__ = {"sqlite_with_rowid": False}

    signature: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime]


class HandoffRow(Base):
    """A shift handoff posted in a channel. A scheduled one has a `slot` (its local time, ISO); the unique
    (channel, slot) index is the claim that lets exactly one replica post it. Typed ones have no slot."""

    __tablename__ = "handoffs"
    __table_args__ = (
        Index("uq_handoffs_channel_slot", "channel_id", "slot", unique=True),
        Index("ix_handoffs_channel_posted", "channel_id", "posted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    slot: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    message_ts: Mapped[str | None] = mapped_column(String(32))
